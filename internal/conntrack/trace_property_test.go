package conntrack

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/nft"
)

// simVerdict is packet-tracer's verdict in the simulator's words.
func simVerdict(t acl.Trace) string {
	if t.Admit {
		return nft.Admitted.String()
	}
	switch t.Refusal {
	case "reset":
		return nft.Reset.String()
	case "unreachable":
		return nft.Unreachable.String()
	case "drop":
		return nft.Dropped.String()
	}
	return t.Refusal
}

// TestTracerAgreesWithSimulator: for random ACLs with limits (permit and
// deny connlimits per source, per prefix and in total, connlimit 0,
// hard-drop, refuse drop) and random sequences of connection attempts and
// closes, packet-tracer's verdict for the next connection, with the counts
// that attribution gives for the connections open so far (as `show
// access-list sessions` has them), is the simulator's outcome for that
// connection on the compiled ruleset.
func TestTracerAgreesWithSimulator(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 14))
	addrs := []string{"10.0.0.1", "10.0.0.2", "10.0.0.9", "10.0.1.7", "192.168.5.5"}
	pickAddr := func() acl.Addr {
		switch r.IntN(4) {
		case 0:
			return host(addrs[r.IntN(len(addrs))])
		case 1:
			return pfx([]string{"10.0.0.0/24", "10.0.0.0/8", "192.168.0.0/16"}[r.IntN(3)])
		}
		return acl.Addr{}
	}
	ports := []uint16{22, 80, 443}
	// 0, 1 or 2 connlimits, on different keys (several on one entry: each
	// counts, the first over refuses).
	pickLimits := func() []acl.Connlimit {
		var out []acl.Connlimit
		kinds := r.Perm(4)[:r.IntN(3)]
		for _, k := range kinds {
			c := acl.Connlimit{N: r.IntN(4), Key: []acl.KeyKind{acl.PerSource, acl.PerPrefix, acl.Total, acl.PerDestination}[k]}
			if c.Key == acl.PerPrefix {
				c.PrefixLen = 24
			}
			out = append(out, c)
		}
		acl.SortConnlimits(out)
		return out
	}
	decided := map[string]int{}
	for round := range 300 {
		l := &acl.ACL{Name: "p", Family: acl.IPv4}
		for i := range 1 + r.IntN(6) {
			e := &acl.Entry{Seq: 10 * (i + 1), Action: []acl.Action{acl.Permit, acl.Permit, acl.Deny, acl.HardDrop}[r.IntN(4)],
				Proto: []int{acl.ProtoAny, acl.ProtoTCP, acl.ProtoUDP}[r.IntN(3)], Src: pickAddr(), Dst: pickAddr()}
			if e.Proto != acl.ProtoAny && r.IntN(2) == 0 {
				e.DstPort = acl.PortMatch{Op: acl.PortEq, Lo: ports[r.IntN(len(ports))]}
			}
			if e.Action != acl.HardDrop {
				e.Connlimits = pickLimits()
				if r.IntN(5) == 0 {
					e.Refuse = acl.Refuse{Kind: acl.RefuseDrop}
				}
			}
			l.Entries = append(l.Entries, e)
		}
		cfg, rs := compiledOnEth0(t, l)
		bs := Bindings(cfg, func(i *acl.Interface) string { return i.Name })
		sim := nft.NewSimOpen(rs)
		var open []Flow
		var ids []int
		for i := range 30 {
			if len(open) > 0 && r.IntN(4) == 0 {
				k := r.IntN(len(open))
				sim.Close(ids[k])
				open, ids = append(open[:k], open[k+1:]...), append(ids[:k], ids[k+1:]...)
			}
			f := Flow{Proto: []uint8{6, 17}[r.IntN(2)], Src: netip.MustParseAddr(addrs[r.IntN(len(addrs))]),
				Dst: netip.MustParseAddr(addrs[r.IntN(len(addrs))]), SrcPort: uint16(30000 + i),
				DstPort: ports[r.IntN(len(ports))], TCPState: 3}
			st := acl.TraceState{Dir: acl.In, Key: TraceKeys(Attribute(bs, open, nil).Counts(), acl.IPv4, acl.In)}
			tr := acl.TracePacket(cfg, l, acl.Packet{Proto: f.Proto, Src: f.Src, Dst: f.Dst, SPort: f.SrcPort, DPort: f.DstPort}, st)
			out, id := sim.Connect(nft.Flow{Hook: "input", IIF: "eth0", Src: f.Src, Dst: f.Dst, Proto: f.Proto, SPort: f.SrcPort, DPort: f.DstPort})
			if got := simVerdict(tr); got != out.String() {
				t.Fatalf("round %d attempt %d %s with %d open: tracer %s (%s, seq %d), simulator %s\n%s",
					round, i, f, len(open), got, tr.Reason, tr.Seq, out, acl.Format(cfg))
			}
			decided[tr.Reason]++
			if out == nft.Admitted {
				open, ids = append(open, f), append(ids, id)
			}
		}
	}
	// The property means something only if every kind of verdict occurred.
	for _, reason := range []string{"permit", "deny", "hard-drop", "connlimit", "implicit deny"} {
		if decided[reason] < 20 {
			t.Errorf("only %d verdicts for %q in the sample: %v", decided[reason], reason, decided)
		}
	}
}
