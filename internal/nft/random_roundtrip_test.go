package nft_test

import (
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/netns"
	"github.com/slxsh/slxsh/internal/nft"
)

// randomACL builds an ACL of n entries with random matches and limits from
// a fixed seed, to cover statement forms and values the goldens do not.
func randomACL(r *rand.Rand, f acl.Family, name string, n int) *acl.ACL {
	a := &acl.ACL{Name: name, Family: f}
	protos := []int{acl.ProtoAny, acl.ProtoTCP, acl.ProtoUDP, acl.ProtoSCTP, acl.ProtoICMP, 47, 0, 253}
	for i := 1; i <= n; i++ {
		e := &acl.Entry{Seq: i * 10, Action: acl.Action(r.IntN(3)), Proto: protos[r.IntN(len(protos))],
			Src: randomAddr(r, f), Dst: randomAddr(r, f), Log: r.IntN(8) == 0}
		if e.Proto == acl.ProtoTCP || e.Proto == acl.ProtoUDP || e.Proto == acl.ProtoSCTP {
			e.SrcPort, e.DstPort = randomPort(r), randomPort(r)
		}
		if e.Action != acl.HardDrop && r.IntN(3) == 0 {
			cl := acl.Connlimit{N: r.IntN(40), Key: acl.KeyKind(r.IntN(4))}
			if cl.Key == acl.PerPrefix {
				cl.PrefixLen = 1 + r.IntN(f.Bits()-1)
			}
			e.Connlimits = []acl.Connlimit{cl}
			if k, _ := cl.LimitKey(f); k != acl.Total && r.IntN(3) == 0 {
				e.Connlimits = append(e.Connlimits, acl.Connlimit{N: r.IntN(40), Key: acl.Total})
			}
			acl.SortConnlimits(e.Connlimits)
		}
		if e.Action != acl.HardDrop && r.IntN(5) == 0 {
			e.Rate = &acl.Rate{N: 1 + r.IntN(100), Per: acl.Period(r.IntN(4)), Burst: r.IntN(3) * 7, Key: acl.KeyKind(r.IntN(2) * 3)}
		}
		if (len(e.Connlimits) > 0 || e.Rate != nil) && r.IntN(3) == 0 {
			e.BlockFor = &acl.BlockFor{Seconds: 1 + r.IntN(90000)}
		}
		if r.IntN(10) == 0 {
			e.LoadLimit = &acl.LoadLimit{Hundredths: 1 + r.IntN(1000)}
		}
		if r.IntN(6) == 0 {
			e.Refuse.Kind = acl.RefuseDrop
		}
		a.Entries = append(a.Entries, e)
	}
	return a
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

func randomAddr(r *rand.Rand, f acl.Family) acl.Addr {
	size := f.Bits() / 8
	a, _ := netip.AddrFromSlice(randomBytes(r, size))
	switch r.IntN(4) {
	case 0:
		return acl.Addr{}
	case 1:
		return acl.Addr{Kind: acl.AddrPrefix, Prefix: netip.PrefixFrom(a, f.Bits())}
	case 2:
		p, _ := a.Prefix(1 + r.IntN(f.Bits()-1))
		return acl.Addr{Kind: acl.AddrPrefix, Prefix: p}
	}
	// A non-contiguous wildcard: random "don't care" bits, base bits cleared.
	w := randomBytes(r, size)
	w[0] |= 0x01 // a don't-care bit before a care bit: never a prefix
	w[0] &^= 0x02
	base := a.AsSlice()
	for i := range base {
		base[i] &^= w[i]
	}
	wa, _ := netip.AddrFromSlice(w)
	ba, _ := netip.AddrFromSlice(base)
	return acl.Addr{Kind: acl.AddrWildcard, Base: ba, Wildcard: wa}
}

func randomPort(r *rand.Rand) acl.PortMatch {
	p := uint16(1 + r.IntN(65534))
	switch r.IntN(6) {
	case 1:
		return acl.PortMatch{Op: acl.PortEq, Lo: p}
	case 2:
		return acl.PortMatch{Op: acl.PortNeq, Lo: p}
	case 3:
		return acl.PortMatch{Op: acl.PortLt, Lo: p}
	case 4:
		return acl.PortMatch{Op: acl.PortGt, Lo: p}
	case 5:
		return acl.PortMatch{Op: acl.PortRange, Lo: p / 2, Hi: p}
	}
	return acl.PortMatch{}
}

// TestKernelRandomRoundTrip loads a compiled ruleset of random entries with
// `nft -f` and checks the listing and the kernel's expressions, like
// TestKernelGoldenRoundTrip does for the goldens.
func TestKernelRandomRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	c := &acl.Config{
		ACLs: []*acl.ACL{randomACL(r, acl.IPv4, "r4", 150), randomACL(r, acl.IPv6, "r6", 150)},
		Interfaces: []*acl.Interface{{Kind: acl.IfLinux, Name: "eth0",
			Groups: [2][2]string{{"r4", "r4"}, {"r6", "r6"}}}},
	}
	rs, err := nft.Compile(c, nft.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ns := netns.New(t)
	text := rs.String()
	path := filepath.Join(t.TempDir(), "random.nft")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	ns.MustExec(t, "nft", "-f", path)
	listed := nftSized(rs, ns.MustExec(t, "nft", "list", "table", "inet", rs.Table))
	if d := cmp.Diff(text, listed); d != "" {
		t.Errorf("nft list differs from String() (-ours +nft):\n%s", d)
	}
	compareExprs(t, ns.NFT(t), rs)
}
