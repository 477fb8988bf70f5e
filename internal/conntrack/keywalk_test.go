package conntrack

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
)

// TestKeyWalkIsTheWalk: for random ACLs (limited permits and denies,
// deciding and undecidable entries, remarks, hard drops, overlapping and
// disjoint matches) and random flows, the index's keyWalk counts a flow
// under exactly the keys, in the same order, that Binding.walk does.
func TestKeyWalkIsTheWalk(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 13))
	addrs := []string{"10.0.0.1", "10.0.0.2", "10.0.1.7", "10.1.0.1", "192.168.5.5"}
	pickAddr := func() acl.Addr {
		switch r.IntN(4) {
		case 0:
			return acl.Addr{}
		case 1:
			return host(addrs[r.IntN(len(addrs))])
		case 2:
			return pfx([]string{"10.0.0.0/24", "10.0.0.0/8", "10.0.1.0/25", "192.168.0.0/16"}[r.IntN(4)])
		}
		w, _ := acl.NewWildcardAddr(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("0.0.255.0"))
		return w
	}
	ports := []uint16{22, 80, 443, 40000}
	pickPort := func() acl.PortMatch {
		p := ports[r.IntN(len(ports))]
		switch r.IntN(4) {
		case 0:
			return acl.PortMatch{Op: acl.PortEq, Lo: p}
		case 1:
			return acl.PortMatch{Op: acl.PortNeq, Lo: p}
		case 2:
			return acl.PortMatch{Op: acl.PortRange, Lo: p, Hi: p + 100}
		}
		return acl.PortMatch{}
	}
	limits := []acl.Connlimit{{N: 3}, {N: 5, Key: acl.PerPrefix, PrefixLen: 24}, {N: 2, Key: acl.PerDestination}, {N: 9, Key: acl.Total}}
	counted, decided := 0, 0
	for range 400 {
		l := &acl.ACL{Name: "w", Family: acl.IPv4}
		for i := range 1 + r.IntN(12) {
			e := &acl.Entry{Seq: 10 * (i + 1), Action: []acl.Action{acl.Permit, acl.Permit, acl.Deny, acl.HardDrop, acl.Remark}[r.IntN(5)],
				Proto: []int{acl.ProtoAny, acl.ProtoTCP, acl.ProtoUDP}[r.IntN(3)], Src: pickAddr(), Dst: pickAddr()}
			if e.Proto != acl.ProtoAny {
				e.SrcPort, e.DstPort = pickPort(), pickPort()
			}
			if r.IntN(3) == 0 {
				e.Connlimits = append(e.Connlimits, limits[r.IntN(2)])
				if r.IntN(3) == 0 {
					e.Connlimits = append(e.Connlimits, limits[2+r.IntN(2)])
				}
			}
			if r.IntN(6) == 0 {
				e.TimeRange = "office" // a condition conntrack cannot show
			}
			l.Entries = append(l.Entries, e)
		}
		b := Binding{ACL: l, Dir: acl.In, Ifaces: []string{"eth0"}}
		w := newKeyWalk(b)
		for range 30 {
			f := Flow{Proto: []uint8{6, 17}[r.IntN(2)], Src: netip.MustParseAddr(addrs[r.IntN(len(addrs))]),
				Dst: netip.MustParseAddr(addrs[r.IntN(len(addrs))]), SrcPort: ports[r.IntN(len(ports))],
				DstPort: ports[r.IntN(len(ports))], TCPState: 3}
			var want, got []KeyID
			if _, ok := b.walk(f, func(k KeyID, _ *acl.Connlimit, _ acl.Action) { want = append(want, k) }); ok {
				decided++
			}
			w.keys(f, func(k KeyID) { got = append(got, k) })
			if !slices.Equal(got, want) {
				t.Fatalf("flow %v through\n%v\nkeyWalk counts %v, the walk %v", f, entriesText(l), got, want)
			}
			counted += len(want)
		}
	}
	// The random ACLs must exercise both: flows counted, flows decided.
	if counted < 1000 || decided < 1000 {
		t.Fatalf("only %d keys counted and %d flows admitted: the generator misses cases", counted, decided)
	}
}

func entriesText(l *acl.ACL) string {
	var s string
	for _, e := range l.Entries {
		s += " " + acl.FormatEntry(l.Family, e) + "\n"
	}
	return s
}
