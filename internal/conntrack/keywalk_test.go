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
	pickAddr, pickPort := randomMatches(r)
	addrs, ports := randomAddrs, randomPorts
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
