package acl

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestOverlapsIsSafe: whenever one connection matches both entries,
// Overlaps says so (it may only err towards true), over random entries
// and connections; and disjoint entries are told apart.
func TestOverlapsIsSafe(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	prefixes := []string{"10.0.0.0/8", "10.0.0.0/24", "10.0.1.0/24", "10.0.0.5/32", "192.168.0.0/16"}
	addr := func() Addr {
		switch r.IntN(4) {
		case 0:
			return Addr{}
		case 1:
			w, _ := NewWildcardAddr(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("0.0.255.0"))
			return w
		}
		return NewPrefixAddr(netip.MustParsePrefix(prefixes[r.IntN(len(prefixes))]))
	}
	ports := []uint16{0, 1, 22, 80, 443, 65535}
	port := func() PortMatch {
		p := ports[r.IntN(len(ports))]
		op := []PortOp{PortNone, PortEq, PortNeq, PortLt, PortGt, PortRange}[r.IntN(6)]
		m := PortMatch{Op: op, Lo: p}
		if op == PortRange {
			m.Hi = min(p+100, 65535)
		}
		return m
	}
	entry := func() *Entry {
		e := &Entry{Action: Permit, Proto: []int{ProtoAny, ProtoTCP, ProtoUDP}[r.IntN(3)], Src: addr(), Dst: addr()}
		if e.Proto != ProtoAny {
			e.SrcPort, e.DstPort = port(), port()
		}
		return e
	}
	hosts := []string{"10.0.0.1", "10.0.0.5", "10.0.1.9", "192.168.3.3", "172.16.0.1"}
	disjoint := 0
	for range 3000 {
		a, b := entry(), entry()
		ov := a.Overlaps(b)
		if !ov {
			disjoint++
		}
		for range 40 {
			p := uint8([]int{6, 17}[r.IntN(2)])
			src, dst := netip.MustParseAddr(hosts[r.IntN(len(hosts))]), netip.MustParseAddr(hosts[r.IntN(len(hosts))])
			sp, dp := ports[r.IntN(len(ports))], ports[r.IntN(len(ports))]
			if a.Matches(p, src, dst, sp, dp) && b.Matches(p, src, dst, sp, dp) && !ov {
				t.Fatalf("%+v and %+v both match %v %s:%d -> %s:%d, but Overlaps is false", a, b, p, src, sp, dst, dp)
			}
		}
	}
	if disjoint < 300 {
		t.Errorf("only %d of 3000 pairs told disjoint: the test proves little", disjoint)
	}
	x := &Entry{Action: Permit, Proto: ProtoTCP, Src: NewHostAddr(netip.MustParseAddr("10.0.0.1")), DstPort: PortMatch{Op: PortEq, Lo: 22}}
	y := &Entry{Action: Permit, Proto: ProtoTCP, Src: NewHostAddr(netip.MustParseAddr("10.0.0.2")), DstPort: PortMatch{Op: PortEq, Lo: 22}}
	if x.Overlaps(y) || !x.Overlaps(&Entry{Action: Permit, Proto: ProtoAny}) {
		t.Error("two hosts overlap, or an entry does not overlap permit ip any any")
	}
	neq := &Entry{Action: Permit, Proto: ProtoTCP, DstPort: PortMatch{Op: PortNeq, Lo: 22}}
	if neq.Overlaps(x) || !neq.Overlaps(&Entry{Action: Permit, Proto: ProtoTCP, DstPort: PortMatch{Op: PortRange, Lo: 22, Hi: 23}}) {
		t.Error("neq 22 overlaps eq 22, or not range 22 23")
	}
}
