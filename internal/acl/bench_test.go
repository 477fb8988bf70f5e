package acl_test

import (
	"net/netip"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
)

// bigConfig is one IPv4 list of n distinct limited entries (seq 1..n: step
// 10 would run out of numbers at 6553 entries), applied in.
func bigConfig(b *testing.B, n int) *acl.Config {
	c := acl.New()
	if _, err := c.EnsureACL(acl.IPv4, "big"); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		e := &acl.Entry{Action: acl.Permit, Proto: acl.ProtoTCP, Src: acl.NewHostAddr(a),
			Seq: i + 1, DstPort: acl.PortMatch{Op: acl.PortEq, Lo: 22}, Connlimits: []acl.Connlimit{{N: 3}}}
		if err := c.AddEntry(acl.IPv4, "big", e); err != nil {
			b.Fatal(err)
		}
	}
	if err := c.SetAccessGroup(acl.IfLinux, "eth0", acl.IPv4, acl.In, "big"); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkBuild10k: typing (or replaying) a 10k-entry list line by line.
func BenchmarkBuild10k(b *testing.B) {
	for b.Loop() {
		bigConfig(b, 10000)
	}
}

// BenchmarkValidate10k: what the agent pays per change of a 10k-entry config.
func BenchmarkValidate10k(b *testing.B) {
	c := bigConfig(b, 10000)
	for b.Loop() {
		if err := acl.Validate(c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFormat10k: show running-config of a 10k-entry config.
func BenchmarkFormat10k(b *testing.B) {
	c := bigConfig(b, 10000)
	for b.Loop() {
		_ = acl.Format(c)
	}
}

// BenchmarkClone10k: the copy a transaction starts from.
func BenchmarkClone10k(b *testing.B) {
	c := bigConfig(b, 10000)
	for b.Loop() {
		_ = c.Clone()
	}
}
