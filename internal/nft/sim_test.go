package nft_test

import (
	"net/netip"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/nft"
)

// A packet-flow table: connection attempts in order against a compiled
// config, each with the outcome the kernel gives (the kernel tests in
// semantics_test.go and kernel_acl_test.go prove the same cases for real).

type attempt struct {
	hook     string // "" is input
	iif, oif string // "" is eth0 for the hook's side
	src, dst string // dst "ADDR:PORT"
	proto    uint8  // 0 is tcp
	close    int    // before this attempt, close the admitted connection of attempt #close (1-based)
	want     nft.Outcome
}

func runFlows(t *testing.T, name, config string, o nft.Options, prep func(*nft.Sim), flows []attempt) *nft.Sim {
	t.Helper()
	c := mustParse(t, config)
	if o.MgmtInterface == "" {
		o.MgmtInterface = "eth0"
	}
	rs, err := nft.Compile(c, o)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	sim := nft.NewSimOpen(rs)
	if prep != nil {
		prep(sim)
	}
	ids := map[int]int{}
	for i, a := range flows {
		if a.close > 0 {
			sim.Close(ids[a.close])
		}
		ap := netip.MustParseAddrPort(a.dst)
		f := nft.Flow{Hook: a.hook, IIF: a.iif, OIF: a.oif, Src: netip.MustParseAddr(a.src), Dst: ap.Addr(),
			Proto: a.proto, SPort: 40000 + uint16(i), DPort: ap.Port()}
		if f.Hook == "" {
			f.Hook = "input"
		}
		if f.Proto == 0 {
			f.Proto = acl.ProtoTCP
		}
		if f.IIF == "" && f.Hook != "output" {
			f.IIF = "eth0"
		}
		if f.OIF == "" && f.Hook != "input" {
			f.OIF = "eth0"
		}
		got, id := sim.Connect(f)
		ids[i+1] = id
		if got != a.want {
			t.Errorf("%s: attempt %d %s -> %s (%s): %v, want %v", name, i+1, a.src, a.dst, f.Hook, got, a.want)
		}
	}
	return sim
}

const slx = `ip access-list extended check
 seq 10 permit tcp host 10.24.12.107 host 10.24.12.129 eq 22 connlimit 3
`

func TestSimSLXExample(t *testing.T) {
	const c, s = "10.24.12.107", "10.24.12.129"
	sim := runFlows(t, "slx+permit", slx+" seq 20 permit ip any any\ninterface management 0\n ip access-group check in\n", nft.Options{}, nil, []attempt{
		{src: c, dst: s + ":22", want: nft.Admitted},
		{src: c, dst: s + ":22", want: nft.Admitted},
		{src: c, dst: s + ":22", want: nft.Admitted},
		{src: c, dst: s + ":22", want: nft.Reset},
		{src: c, dst: s + ":80", want: nft.Admitted},
		{src: "10.24.12.108", dst: s + ":22", want: nft.Admitted},
		{src: c, dst: s + ":22", close: 1, want: nft.Admitted},
		{src: c, dst: s + ":22", want: nft.Reset},
		{src: c, dst: s + ":22", iif: "eth1", want: nft.Admitted}, // no ACL on eth1
	})
	m, r := nft.CounterNames(acl.IPv4, "check", acl.In, 10)
	if sim.Counter(m) != 6 || sim.Counter(r) != 2 {
		t.Errorf("seq 10: %d matches, %d refused; want 6, 2", sim.Counter(m), sim.Counter(r))
	}
	runFlows(t, "slx alone", slx+"interface management 0\n ip access-group check in\n", nft.Options{}, nil, []attempt{
		{src: c, dst: s + ":80", want: nft.Reset},
		{src: c, dst: s + ":53", proto: acl.ProtoUDP, want: nft.Unreachable},
		{src: "10.24.12.108", dst: s + ":22", want: nft.Reset},
	})
}

func TestSimLimits(t *testing.T) {
	const s = "10.0.0.2:9000"
	runFlows(t, "deny connlimit 3", `ip access-list extended a
 seq 10 deny tcp any any eq 9000 connlimit 3
 seq 20 permit ip any any
interface eth0
 ip access-group a in
`, nft.Options{}, nil, []attempt{
		{src: "10.0.0.1", dst: s, want: nft.Admitted},
		{src: "10.0.0.1", dst: s, want: nft.Admitted},
		{src: "10.0.0.1", dst: s, want: nft.Reset},
		{src: "10.0.0.3", dst: s, want: nft.Admitted},
	})
	runFlows(t, "per-prefix 24", `ip access-list extended a
 seq 10 permit tcp any any eq 9000 connlimit 2 per-prefix 24
interface eth0
 ip access-group a in
`, nft.Options{}, nil, []attempt{
		{src: "10.0.0.1", dst: s, want: nft.Admitted},
		{src: "10.0.0.5", dst: s, want: nft.Admitted},
		{src: "10.0.0.1", dst: s, want: nft.Reset},
		{src: "10.0.1.1", dst: s, want: nft.Admitted},
	})
	runFlows(t, "per-prefix 64 (IPv6)", `ipv6 access-list extended a
 seq 10 permit tcp any any eq 9000 connlimit 1 per-prefix 64
interface eth0
 ipv6 access-group a in
`, nft.Options{}, nil, []attempt{
		{src: "fd00::1", dst: "[fd00::2]:9000", want: nft.Admitted},
		{src: "fd00::5", dst: "[fd00::2]:9000", want: nft.Reset},
		{src: "fd00:0:0:1::1", dst: "[fd00::2]:9000", want: nft.Admitted},
		{src: "10.0.0.1", dst: s, want: nft.Admitted}, // IPv4: no ACL
	})
	runFlows(t, "total 2", `ip access-list extended a
 seq 10 permit ip any any connlimit 2 total
interface eth0
 ip access-group a in
`, nft.Options{}, nil, []attempt{
		{src: "10.0.0.1", dst: s, want: nft.Admitted},
		{src: "10.0.0.3", dst: "10.0.0.2:53", proto: acl.ProtoUDP, want: nft.Admitted},
		{src: "10.0.0.3", dst: s, want: nft.Reset},
		{src: "10.0.0.4", dst: "10.0.0.2:53", proto: acl.ProtoUDP, want: nft.Unreachable},
	})
	runFlows(t, "full set", `ip access-list extended a
 seq 10 permit tcp any any eq 9000 connlimit 5
 seq 20 permit ip any any
interface eth0
 ip access-group a in
`, nft.Options{SetSize: 2}, nil, []attempt{
		{src: "10.0.0.1", dst: s, want: nft.Admitted},
		{src: "10.0.0.3", dst: s, want: nft.Admitted},
		{src: "10.0.0.4", dst: s, want: nft.Reset},
		{src: "10.0.0.1", dst: s, want: nft.Admitted},
	})
	runFlows(t, "connlimit 0 and deny connlimit 1", `ip access-list extended a
 seq 10 permit tcp any any eq 9000 connlimit 0
 seq 20 deny tcp any any eq 9001 connlimit 1
 seq 30 permit ip any any
interface eth0
 ip access-group a in
`, nft.Options{}, nil, []attempt{
		{src: "10.0.0.1", dst: s, want: nft.Reset},
		{src: "10.0.0.1", dst: "10.0.0.2:9001", want: nft.Reset},
		{src: "10.0.0.1", dst: "10.0.0.2:9002", want: nft.Admitted},
	})
	// Connections that connlimit refuses spend none of the rate: the
	// source has had 3 admitted this window when the rate refuses it.
	runFlows(t, "connlimit and rate", `ip access-list extended a
 seq 10 permit tcp any any eq 9000 connlimit 1 rate 3 per minute
interface eth0
 ip access-group a in
`, nft.Options{}, nil, []attempt{
		{src: "10.0.0.1", dst: s, want: nft.Admitted},
		{src: "10.0.0.1", dst: s, want: nft.Reset},
		{src: "10.0.0.1", dst: s, want: nft.Reset},
		{src: "10.0.0.1", dst: s, close: 1, want: nft.Admitted},
		{src: "10.0.0.1", dst: s, close: 4, want: nft.Admitted},
		{src: "10.0.0.1", dst: s, close: 5, want: nft.Reset},
	})
}

func TestSimRefusalsAndDirections(t *testing.T) {
	runFlows(t, "refusals", `ip access-list extended a
 seq 10 hard-drop tcp any any eq telnet
 seq 20 deny udp any any refuse drop
 seq 30 deny tcp any any eq 25
 seq 40 deny ip 192.0.2.0/24 any
 seq 50 permit ip any any
interface eth0
 ip access-group a in
`, nft.Options{}, nil, []attempt{
		{src: "10.0.0.1", dst: "10.0.0.2:23", want: nft.Dropped},
		{src: "10.0.0.1", dst: "10.0.0.2:53", proto: acl.ProtoUDP, want: nft.Dropped},
		{src: "10.0.0.1", dst: "10.0.0.2:25", want: nft.Reset},
		{src: "192.0.2.7", dst: "10.0.0.2:80", want: nft.Reset},
		{src: "192.0.2.7", dst: "10.0.0.2:123", proto: acl.ProtoUDP, want: nft.Dropped},
		{src: "192.0.2.7", dst: "10.0.0.2:0", proto: acl.ProtoICMP, want: nft.Unreachable},
		{src: "10.0.0.1", dst: "10.0.0.2:80", want: nft.Admitted},
	})
	// Routed: in on eth1 and out on eth2 are both judged in forward.
	runFlows(t, "routed", `ip access-list extended inside
 seq 10 permit tcp any any eq 80
ip access-list extended egress
 seq 10 permit tcp any any eq 80 connlimit 1 per-destination
interface ethernet 0/1
 ip access-group inside in
interface ethernet 0/2
 ip access-group egress out
`, nft.Options{InterfaceMap: map[string]string{"0/1": "eth1", "0/2": "eth2"}}, nil, []attempt{
		{hook: "forward", iif: "eth1", oif: "eth2", src: "10.1.0.2", dst: "10.2.0.2:80", want: nft.Admitted},
		{hook: "forward", iif: "eth1", oif: "eth2", src: "10.1.0.3", dst: "10.2.0.2:80", want: nft.Reset},
		{hook: "forward", iif: "eth1", oif: "eth3", src: "10.1.0.3", dst: "10.2.0.2:80", want: nft.Admitted},
		{hook: "forward", iif: "eth1", oif: "eth3", src: "10.1.0.3", dst: "10.2.0.2:22", want: nft.Reset},
		{hook: "input", iif: "eth2", src: "10.2.0.2", dst: "10.2.0.1:22", want: nft.Admitted},
		{hook: "output", oif: "eth2", src: "10.2.0.1", dst: "10.2.0.3:80", want: nft.Admitted},
		{hook: "output", oif: "eth2", src: "10.2.0.1", dst: "10.2.0.3:80", want: nft.Reset},
		// One count per entry and direction, whatever the hook: 10.2.0.2
		// holds the routed connection of attempt 1.
		{hook: "output", oif: "eth2", src: "10.2.0.1", dst: "10.2.0.2:80", want: nft.Reset},
		{hook: "output", oif: "eth2", src: "10.2.0.1", dst: "10.2.0.2:80", close: 1, want: nft.Admitted},
	})
}

func TestSimAgentSets(t *testing.T) {
	const s = "10.0.0.2:9000"
	set := "ip_a_in_10_src_3"
	runFlows(t, "gate closed", "ip access-list extended a\n seq 10 permit tcp any any eq 9000 connlimit 3\ninterface eth0\n ip access-group a in\n",
		nft.Options{}, func(sim *nft.Sim) { sim.AddElement(nft.GateSetName(set), "ipv4") }, []attempt{
			{src: "10.0.0.1", dst: s, want: nft.Reset},
		})
	runFlows(t, "reservations", "ip access-list extended a\n seq 10 permit tcp any any eq 9000 connlimit 3\ninterface eth0\n ip access-group a in\n",
		nft.Options{}, func(sim *nft.Sim) {
			sim.Reserve(nft.Reservation{Set: set, Key: "10.0.0.3", Depth: 3})
			sim.Reserve(nft.Reservation{Set: set, Key: "10.0.0.4", Depth: 2})
		}, []attempt{
			{src: "10.0.0.3", dst: s, want: nft.Reset},
			{src: "10.0.0.4", dst: s, want: nft.Admitted},
			{src: "10.0.0.4", dst: s, want: nft.Reset},
			{src: "10.0.0.1", dst: s, want: nft.Admitted},
		})
	runFlows(t, "block-for", `ip access-list extended a
 seq 10 permit tcp any any eq 9000 connlimit 1 block-for 60
 seq 20 permit ip any any
interface eth0
 ip access-group a in
`, nft.Options{}, nil, []attempt{
		{src: "10.0.0.1", dst: s, want: nft.Admitted},
		{src: "10.0.0.1", dst: "10.0.0.2:9001", want: nft.Admitted},
		{src: "10.0.0.1", dst: s, want: nft.Reset},
		{src: "10.0.0.1", dst: "10.0.0.2:9001", want: nft.Reset},
		{src: "10.0.0.3", dst: "10.0.0.2:9001", want: nft.Admitted},
	})
	// A blocked source is refused as the entry that blocked it refuses:
	// silently for `refuse drop`, with the message for TCP (any other
	// protocol as the refuse chain does) for `refuse message`.
	runFlows(t, "block-for refuse drop", `ip access-list extended a
 seq 10 permit tcp any any eq 9000 connlimit 1 block-for 60 refuse drop
 seq 20 permit tcp any any eq 9002 connlimit 1 block-for 60
 seq 30 permit ip any any
interface eth0
 ip access-group a in
`, nft.Options{}, nil, []attempt{
		{src: "10.0.0.1", dst: s, want: nft.Admitted},
		{src: "10.0.0.1", dst: s, want: nft.Dropped},
		{src: "10.0.0.1", dst: "10.0.0.2:9001", want: nft.Dropped},
		{src: "10.0.0.1", dst: "10.0.0.2:53", proto: 17, want: nft.Dropped},
		{src: "10.0.0.3", dst: "10.0.0.2:9002", want: nft.Admitted},
		{src: "10.0.0.3", dst: "10.0.0.2:9002", want: nft.Reset},
		{src: "10.0.0.3", dst: "10.0.0.2:9001", want: nft.Reset},
		{src: "10.0.0.4", dst: "10.0.0.2:9001", want: nft.Admitted},
	})
	runFlows(t, "block-for refuse message", `ip access-list extended a
 seq 10 permit tcp any any eq 9000 connlimit 1 block-for 60 refuse message "421 busy"
 seq 30 permit ip any any
interface eth0
 ip access-group a in
`, nft.Options{}, nil, []attempt{
		{src: "10.0.0.1", dst: s, want: nft.Admitted},
		{src: "10.0.0.1", dst: s, want: nft.Messaged},
		{src: "10.0.0.1", dst: "10.0.0.2:9001", want: nft.Messaged},
		{src: "10.0.0.1", dst: "10.0.0.2:53", proto: 17, want: nft.Unreachable},
		{src: "10.0.0.3", dst: "10.0.0.2:9001", want: nft.Admitted},
	})
}

// refuse message: over the limit, the first packet is marked for the
// responder instead of reset, to the host and routed; a closed session
// frees its slot; a logged entry decides the same as an unlogged one.
func TestSimRefuseMessage(t *testing.T) {
	const cfg = `ip access-list extended mail
 seq 10 permit tcp any host 10.0.0.2 eq 25 connlimit 2 refuse message "421 busy" log
 seq 20 deny tcp any any eq 23 refuse message "no telnet"
 seq 30 permit ip any any
!
interface eth0
 ip access-group mail in
!
`
	runFlows(t, "message", cfg, nft.Options{}, nil, []attempt{
		{src: "10.0.0.1", dst: "10.0.0.2:25", want: nft.Admitted},
		{src: "10.0.0.1", dst: "10.0.0.2:25", want: nft.Admitted},
		{src: "10.0.0.1", dst: "10.0.0.2:25", want: nft.Messaged},
		{hook: "forward", oif: "eth1", src: "10.0.0.3", dst: "10.0.0.2:25", want: nft.Admitted},
		{src: "10.0.0.1", dst: "10.0.0.2:25", close: 1, want: nft.Admitted},
		{src: "10.0.0.1", dst: "10.0.0.2:25", want: nft.Messaged},
		{hook: "forward", oif: "eth1", src: "10.0.0.1", dst: "10.9.0.1:23", want: nft.Messaged},
		{src: "10.0.0.1", dst: "10.0.0.2:22", want: nft.Admitted},
	})
}
