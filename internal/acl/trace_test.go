package acl

import (
	"net/netip"
	"testing"
	"time"
	_ "time/tzdata"
)

func TestTracePacket(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	host := func(s string) Addr { return NewHostAddr(netip.MustParseAddr(s)) }
	ip := netip.MustParseAddr
	c := New()
	c.TimeRanges = []*TimeRange{{Name: "work", Periodic: []Periodic{{Days: Weekdays, Start: 8 * 60, End: 17 * 60}}}}
	slx := &Entry{Seq: 10, Action: Permit, Proto: ProtoTCP, Src: host("10.24.12.107"), Dst: host("10.24.12.129"),
		DstPort: PortMatch{Op: PortEq, Lo: 22}, Connlimits: []Connlimit{{N: 3}}}
	denyLim := &Entry{Seq: 20, Action: Deny, Proto: ProtoTCP, DstPort: PortMatch{Op: PortEq, Lo: 22},
		Connlimits: []Connlimit{{N: 5, Key: PerPrefix, PrefixLen: 24}}}
	timed := &Entry{Seq: 30, Action: Permit, Proto: ProtoTCP, DstPort: PortMatch{Op: PortEq, Lo: 80}, TimeRange: "work"}
	loaded := &Entry{Seq: 40, Action: Permit, Proto: ProtoTCP, DstPort: PortMatch{Op: PortEq, Lo: 443},
		LoadLimit: &LoadLimit{Hundredths: 250}}
	drop := &Entry{Seq: 50, Action: HardDrop, Proto: ProtoUDP, SrcPort: PortMatch{Op: PortLt, Lo: 1024}}
	msg := &Entry{Seq: 60, Action: Deny, Proto: ProtoTCP, DstPort: PortMatch{Op: PortEq, Lo: 25},
		Refuse: Refuse{Kind: RefuseMessage, Message: "421 busy"}}
	blockE := &Entry{Seq: 70, Action: Permit, Proto: ProtoAny, Connlimits: []Connlimit{{N: 1, Key: Total}}, BlockFor: &BlockFor{Seconds: 60}}
	l := &ACL{Name: "check", Family: IPv4, Entries: []*Entry{slx, denyLim, timed, loaded, drop, msg, blockE}}
	c.ACLs = []*ACL{l}

	// Same UTC time of day, either side of Berlin's spring DST change (29 Mar 2026).
	beforeDST := time.Date(2026, 3, 27, 6, 30, 0, 0, time.UTC) // Fri 07:30 CET: outside 08:00-17:00
	afterDST := time.Date(2026, 3, 30, 6, 30, 0, 0, time.UTC)  // Mon 08:30 CEST: inside
	keys := func(m map[string]KeyState) func(int, Connlimit, string) KeyState {
		return func(seq int, _ Connlimit, key string) KeyState { return m[key] }
	}
	load := func(v float64) func() (float64, bool) { return func() (float64, bool) { return v, true } }
	tcp := func(src, dst string, dport uint16) Packet {
		return Packet{Proto: ProtoTCP, Src: ip(src), Dst: ip(dst), SPort: 34000, DPort: dport}
	}
	for _, tc := range []struct {
		name    string
		p       Packet
		st      TraceState
		admit   bool
		seq     int
		reason  string
		refusal string
		steps   []StepResult
		why     string // of the last step
	}{
		{"slx 2/3 admits", tcp("10.24.12.107", "10.24.12.129", 22), TraceState{Key: keys(map[string]KeyState{"10.24.12.107": {Sessions: 2}})},
			true, 10, "permit", "", []StepResult{Decides}, ""},
		{"slx 3/3 refuses", tcp("10.24.12.107", "10.24.12.129", 22), TraceState{Key: keys(map[string]KeyState{"10.24.12.107": {Sessions: 3, AtLimit: true}})},
			false, 10, "connlimit", "reset", []StepResult{Decides}, ""},
		{"gated refuses", tcp("10.24.12.107", "10.24.12.129", 22), TraceState{Gated: func(seq int) bool { return seq == 10 }},
			false, 10, "connlimit", "reset", []StepResult{Decides}, ""},
		{"limited deny passes on", tcp("10.24.12.108", "10.24.12.129", 22), TraceState{},
			true, 70, "permit", "", []StepResult{NoMatch, PassedOn, NoMatch, NoMatch, NoMatch, NoMatch, Decides}, ""},
		{"limited deny at its limit", tcp("10.24.12.108", "10.24.12.129", 22), TraceState{Key: keys(map[string]KeyState{"10.24.12.0/24": {Sessions: 4, AtLimit: true}})},
			false, 20, "connlimit", "reset", []StepResult{NoMatch, Decides}, ""},
		{"time-range outside (CET)", tcp("10.1.1.1", "10.2.2.2", 80), TraceState{Now: beforeDST, Loc: berlin},
			true, 70, "permit", "", []StepResult{NoMatch, NoMatch, Skipped, NoMatch, NoMatch, NoMatch, Decides}, ""},
		{"time-range inside (CEST)", tcp("10.1.1.1", "10.2.2.2", 80), TraceState{Now: afterDST, Loc: berlin},
			true, 30, "permit", "", []StepResult{NoMatch, NoMatch, Decides}, ""},
		{"load over", tcp("10.1.1.1", "10.2.2.2", 443), TraceState{Load: load(2.51)},
			false, 40, "load-limit", "reset", []StepResult{NoMatch, NoMatch, NoMatch, Decides}, ""},
		{"load under", tcp("10.1.1.1", "10.2.2.2", 443), TraceState{Load: load(2.50)},
			true, 40, "permit", "", []StepResult{NoMatch, NoMatch, NoMatch, Decides}, ""},
		{"hard-drop", Packet{Proto: ProtoUDP, Src: ip("10.1.1.1"), Dst: ip("10.2.2.2"), SPort: 53, DPort: 53}, TraceState{},
			false, 50, "hard-drop", "drop", []StepResult{NoMatch, NoMatch, NoMatch, NoMatch, Decides}, ""},
		{"refuse message", tcp("10.1.1.1", "10.2.2.2", 25), TraceState{},
			false, 60, "deny", `message "421 busy"`, []StepResult{NoMatch, NoMatch, NoMatch, NoMatch, NoMatch, Decides}, ""},
		{"total over, ip entry refuses udp as unreachable", Packet{Proto: ProtoUDP, Src: ip("10.1.1.1"), Dst: ip("10.2.2.2"), SPort: 5000, DPort: 53},
			TraceState{Key: keys(map[string]KeyState{TotalKey: {Sessions: 1, AtLimit: true}})},
			false, 70, "connlimit", "unreachable", []StepResult{NoMatch, NoMatch, NoMatch, NoMatch, NoMatch, NoMatch, Decides}, ""},
		{"blocked source", tcp("10.1.1.1", "10.2.2.2", 22), TraceState{Blocked: func(a netip.Addr) (int, bool) { return 70, a == ip("10.1.1.1") }},
			false, 70, "blocked", "reset", nil, ""},
		// A blocked source is refused as the entry that blocked it refuses.
		{"blocked by a message entry", tcp("10.1.1.1", "10.2.2.2", 22), TraceState{Blocked: func(a netip.Addr) (int, bool) { return 60, true }},
			false, 60, "blocked", `message "421 busy"`, nil, ""},
		{"blocked by a message entry, udp", Packet{Proto: ProtoUDP, Src: ip("10.1.1.1"), Dst: ip("10.2.2.2"), SPort: 5000, DPort: 53},
			TraceState{Blocked: func(a netip.Addr) (int, bool) { return 60, true }}, false, 60, "blocked", "unreachable", nil, ""},
		{"blocked by a dropping entry", tcp("10.1.1.1", "10.2.2.2", 22), TraceState{Blocked: func(a netip.Addr) (int, bool) { return 50, true }},
			false, 50, "blocked", "drop", nil, ""},
		{"why: protocol", Packet{Proto: ProtoSCTP, Src: ip("10.24.12.107"), Dst: ip("10.24.12.129"), DPort: 22}, TraceState{},
			true, 70, "permit", "", []StepResult{NoMatch, NoMatch, NoMatch, NoMatch, NoMatch, NoMatch, Decides}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := TracePacket(c, l, tc.p, tc.st)
			if tr.Admit != tc.admit || tr.Seq != tc.seq || tr.Reason != tc.reason || tr.Refusal != tc.refusal {
				t.Errorf("admit %v seq %d reason %q refusal %q, want %v %d %q %q", tr.Admit, tr.Seq, tr.Reason, tr.Refusal,
					tc.admit, tc.seq, tc.reason, tc.refusal)
			}
			var got []StepResult
			for _, s := range tr.Steps {
				got = append(got, s.Result)
			}
			if len(got) != len(tc.steps) {
				t.Fatalf("steps %v, want %v", got, tc.steps)
			}
			for i := range got {
				if got[i] != tc.steps[i] {
					t.Fatalf("steps %v, want %v", got, tc.steps)
				}
			}
		})
	}
	// Why an entry does not match, field by field.
	for _, tc := range []struct {
		p   Packet
		why string
	}{
		{Packet{Proto: ProtoUDP, Src: ip("10.24.12.107"), Dst: ip("10.24.12.129"), DPort: 22}, "protocol"},
		{tcp("10.24.12.108", "10.24.12.129", 22), "source address"},
		{tcp("10.24.12.107", "10.24.12.130", 22), "destination address"},
		{tcp("10.24.12.107", "10.24.12.129", 23), "destination port"},
		{tcp("10.24.12.107", "10.24.12.129", 22), ""},
	} {
		if got := slx.Mismatch(tc.p.Proto, tc.p.Src, tc.p.Dst, tc.p.SPort, tc.p.DPort); got != tc.why {
			t.Errorf("%v: mismatch %q, want %q", tc.p, got, tc.why)
		}
	}
	if got := drop.Mismatch(ProtoUDP, ip("1.1.1.1"), ip("2.2.2.2"), 2000, 53); got != "source port" {
		t.Errorf("source port: mismatch %q", got)
	}
	// Without the last entry, the implicit deny decides.
	short := &ACL{Name: "short", Family: IPv4, Entries: l.Entries[:6]}
	if tr := TracePacket(c, short, tcp("10.24.12.108", "10.24.12.129", 22), TraceState{}); tr.Admit || tr.Seq != 0 ||
		tr.Reason != "implicit deny" || tr.Refusal != "reset" || len(tr.Steps) != 6 {
		t.Errorf("implicit deny: %+v", tr)
	}
	// user/uid: outbound it is assumed (the tracer has no socket), inbound skipped.
	owned := &ACL{Name: "own", Family: IPv4, Entries: []*Entry{{Seq: 10, Action: Permit, Proto: ProtoTCP, Owner: &Owner{UID: 1000}}}}
	if tr := TracePacket(c, owned, tcp("10.1.1.1", "10.2.2.2", 22), TraceState{Dir: Out}); !tr.Admit ||
		tr.Steps[0].Why != "assuming a local socket of uid 1000 opens it" {
		t.Errorf("uid outbound: %+v", tr)
	}
	if tr := TracePacket(c, owned, tcp("10.1.1.1", "10.2.2.2", 22), TraceState{Dir: In}); tr.Admit || tr.Steps[0].Result != Skipped {
		t.Errorf("uid inbound: %+v", tr)
	}
	if tr := TracePacket(c, owned, tcp("10.1.1.1", "10.2.2.2", 22), TraceState{Dir: Out, Routed: true}); tr.Admit || tr.Steps[0].Result != Skipped {
		t.Errorf("uid outbound, routed: %+v", tr)
	}
	// The skipped step says why.
	tr := TracePacket(c, l, tcp("10.1.1.1", "10.2.2.2", 80), TraceState{Now: beforeDST, Loc: berlin})
	if s := tr.Steps[2]; s.Why != "time-range work is not active" {
		t.Errorf("skipped step says %q", s.Why)
	}
}

// TestTraceQuota: an entry with a quota refuses once its key's window has
// used the quota, as the kernel does, and admits under it or with no
// window open.
func TestTraceQuota(t *testing.T) {
	q := &Entry{Seq: 25, Action: Permit, Proto: ProtoTCP, DstPort: PortMatch{Op: PortEq, Lo: 8080},
		Quota: &Quota{N: 10, Unit: KBytes, Per: Minute, PerSource: true}}
	l := &ACL{Name: "q", Family: IPv4, Entries: []*Entry{q}}
	c := New()
	c.ACLs = []*ACL{l}
	p := Packet{Proto: ProtoTCP, Src: netip.MustParseAddr("10.77.0.13"), Dst: netip.MustParseAddr("10.77.0.2"), SPort: 40000, DPort: 8080}
	used := func(m map[string]uint64) func(int, string) (uint64, bool) {
		return func(seq int, key string) (uint64, bool) { v, ok := m[key]; return v, ok && seq == 25 }
	}
	for _, tc := range []struct {
		name  string
		st    TraceState
		admit bool
	}{
		{"over", TraceState{Quota: used(map[string]uint64{"10.77.0.13": 20000})}, false},
		{"exactly used", TraceState{Quota: used(map[string]uint64{"10.77.0.13": 10240})}, false},
		{"under", TraceState{Quota: used(map[string]uint64{"10.77.0.13": 100})}, true},
		{"another source's window", TraceState{Quota: used(map[string]uint64{"10.77.0.14": 20000})}, true},
		{"not known", TraceState{}, true},
	} {
		tr := TracePacket(c, l, p, tc.st)
		if tr.Admit != tc.admit || tr.Seq != 25 || (!tc.admit && tr.Reason != "quota") {
			t.Errorf("%s: admit %v seq %d reason %q, want admit %v", tc.name, tr.Admit, tr.Seq, tr.Reason, tc.admit)
		}
		if len(tr.Limits) == 0 || tr.Limits[0].Kind != "quota" {
			t.Errorf("%s: limits %+v, want the quota checked", tc.name, tr.Limits)
		}
	}
}
