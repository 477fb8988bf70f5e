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
	for _, set := range unseenConditions {
		e := &acl.Entry{Action: acl.Deny}
		if set(e); !(Binding{}).unseen(e) {
			t.Fatalf("%s: not unseen", acl.FormatEntry(acl.IPv4, e))
		}
	}
	entry4, entry6 := randomWalkEntry(r, pick4, port4), randomWalkEntry(r, pick6, port6)
	counted, decided, counted6 := 0, 0, 0
	for round := range 600 {
		family, addrs, entry := acl.IPv4, randomAddrs, entry4
		if round%3 == 2 {
			family, addrs, entry = acl.IPv6, randomAddrs6, entry6
		}
		l := &acl.ACL{Name: "w", Family: family}
		for i := range 1 + r.IntN(12) {
			l.Entries = append(l.Entries, entry(10*(i+1)))
		}
		// AtNow (a time range is seen) or not: the two agree either way.
		b := Binding{ACL: l, Dir: acl.In, Ifaces: []string{"eth0"}, AtNow: round%2 == 1}
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

// unseenConditions each make an entry undecidable from conntrack (unseen).
var unseenConditions = []func(e *acl.Entry){
	func(e *acl.Entry) { e.TimeRange = "office" },
	func(e *acl.Entry) { e.LoadLimit = &acl.LoadLimit{} },
	func(e *acl.Entry) { e.Rate = &acl.Rate{} },
	func(e *acl.Entry) { e.Quota = &acl.Quota{} },
	func(e *acl.Entry) { e.BlockFor = &acl.BlockFor{} },
	func(e *acl.Entry) { e.Owner = &acl.Owner{} },
}

// randomWalkEntry returns a maker of random entries for the keyWalk tests:
// permits (most often), denies, hard drops and remarks, a third of them
// limited (some under two limits), a fifth with a condition conntrack
// cannot show.
func randomWalkEntry(r *rand.Rand, pickAddr func() acl.Addr, pickPort func() acl.PortMatch) func(seq int) *acl.Entry {
	limits := []acl.Connlimit{{N: 3}, {N: 5, Key: acl.PerPrefix, PrefixLen: 24}, {N: 2, Key: acl.PerDestination}, {N: 9, Key: acl.Total}}
	return func(seq int) *acl.Entry {
		e := &acl.Entry{Seq: seq, Action: []acl.Action{acl.Permit, acl.Permit, acl.Deny, acl.HardDrop, acl.Remark}[r.IntN(5)],
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
			unseenConditions[r.IntN(len(unseenConditions))](e)
		}
		return e
	}
}

// TestKeyWalkAfterIsNewKeyWalk: the walk derived from the one before a
// change (entries removed, added, replaced, in another direction, or
// past afterMost changes), and derived again from that one over further
// changes, is the walk listed afresh, step for step.
func TestKeyWalkAfterIsNewKeyWalk(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 14))
	pick4, port4 := randomMatches(r)
	entry := randomWalkEntry(r, pick4, port4)
	derived := 0
	for round := range 300 {
		prev := &acl.ACL{Name: "w", Family: acl.IPv4}
		for i := range r.IntN(40) {
			prev.Entries = append(prev.Entries, entry(10*(i+1)))
		}
		w := newKeyWalk(Binding{ACL: prev, Dir: acl.In})
		for change := range 4 {
			next := prev.Clone()
			changes := 1 + r.IntN(6)
			if round%20 == 0 && change == 1 {
				changes = afterMost + 1 + r.IntN(10) // listed afresh
			}
			for range changes {
				switch seq := 5 * (1 + r.IntN(90)); {
				case next.Entry(seq) != nil && r.IntN(2) == 0:
					next.Entries = slices.DeleteFunc(next.Entries, func(e *acl.Entry) bool { return e.Seq == seq })
				case next.Entry(seq) != nil: // replaced
					i := slices.IndexFunc(next.Entries, func(e *acl.Entry) bool { return e.Seq == seq })
					next.Entries[i] = entry(seq)
				default:
					next.Entries = append(next.Entries, entry(seq))
					slices.SortFunc(next.Entries, func(a, b *acl.Entry) int { return a.Seq - b.Seq })
				}
			}
			b := Binding{ACL: next, Dir: []acl.Direction{acl.In, acl.Out}[r.IntN(2)]}
			got, want := w.after(prev, b), newKeyWalk(b)
			if len(got.steps) != len(want.steps) {
				t.Fatalf("round %d change %d: %d steps, want %d", round, change, len(got.steps), len(want.steps))
			}
			for i := range want.steps {
				gs, ws := got.steps[i], want.steps[i]
				if gs.e != ws.e || gs.id != ws.id || !slices.Equal(gs.before, ws.before) {
					t.Fatalf("round %d change %d, step %d (seq %d): derived %v before %v, want %v before %v\nbefore the change:\n%safter:\n%s",
						round, change, i, ws.e.Seq, gs.id, seqsOf(gs.before), ws.id, seqsOf(ws.before), entriesText(prev), entriesText(next))
				}
				if len(ws.before) > 0 {
					derived++
				}
			}
			prev, w = next, got
		}
	}
	if derived < 1500 {
		t.Fatalf("only %d steps with stoppers: the generator misses cases", derived)
	}
}

func seqsOf(es []*acl.Entry) []int {
	var out []int
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}
