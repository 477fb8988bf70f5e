package conntrack

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
)

// TestKeyWalkIsTheWalk: for random IPv4 and IPv6 ACLs (limited permits
// and denies, deciding entries and entries with each condition conntrack
// cannot show, remarks, hard drops, overlapping and disjoint matches) and
// random flows, the index's keyWalk counts a flow under exactly the keys,
// in the same order, that Binding.walk does.
func TestKeyWalkIsTheWalk(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 13))
	pick4, port4 := randomMatches(r)
	pick6, port6 := randomMatches6(r)
	ports := randomPorts
	limits := []acl.Connlimit{{N: 3}, {N: 5, Key: acl.PerPrefix, PrefixLen: 24}, {N: 2, Key: acl.PerDestination}, {N: 9, Key: acl.Total}}
	// Each condition that makes an entry undecidable from conntrack (unseen).
	unseenBy := []func(e *acl.Entry){
		func(e *acl.Entry) { e.TimeRange = "office" },
		func(e *acl.Entry) { e.LoadLimit = &acl.LoadLimit{} },
		func(e *acl.Entry) { e.Rate = &acl.Rate{} },
		func(e *acl.Entry) { e.Quota = &acl.Quota{} },
		func(e *acl.Entry) { e.BlockFor = &acl.BlockFor{} },
		func(e *acl.Entry) { e.Owner = &acl.Owner{} },
	}
	counted, decided, counted6 := 0, 0, 0
	for round := range 600 {
		family, addrs, pickAddr, pickPort := acl.IPv4, randomAddrs, pick4, port4
		if round%3 == 2 {
			family, addrs, pickAddr, pickPort = acl.IPv6, randomAddrs6, pick6, port6
		}
		l := &acl.ACL{Name: "w", Family: family}
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
			if r.IntN(5) == 0 {
				unseenBy[r.IntN(len(unseenBy))](e)
				if !unseen(e) {
					t.Fatalf("%s: not unseen", acl.FormatEntry(family, e))
				}
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
			if family == acl.IPv6 {
				counted6 += len(want)
			}
		}
	}
	// The random ACLs must exercise both: flows counted, flows decided.
	if counted < 1500 || decided < 1500 || counted6 < 300 {
		t.Fatalf("only %d keys counted (%d IPv6) and %d flows admitted: the generator misses cases", counted, counted6, decided)
	}
}

func entriesText(l *acl.ACL) string {
	var s string
	for _, e := range l.Entries {
		s += " " + acl.FormatEntry(l.Family, e) + "\n"
	}
	return s
}
