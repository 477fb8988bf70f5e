package nft_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/netns"
	"github.com/slxsh/slxsh/internal/nft"
)

// These tests check the compiled rule shapes with real TCP connections,
// loading the compiler's text with `nft -f` on the server of a Pair (the
// netlink applier is tested by its own kernel tests).

// loadConfig compiles config text with `interface s0` bindings and loads it
// into ns with nft -f.
func loadConfig(t *testing.T, ns *netns.NS, text string, o nft.Options) *nft.Ruleset {
	t.Helper()
	c, err := cli.ParseConfig(text)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := nft.Compile(c, o)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rules.nft")
	if err := os.WriteFile(path, []byte(rs.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ns.MustExec(t, "nft", "-f", path)
	return rs
}

// extraClients adds more IPv4 source addresses to the Pair's client.
func extraClients(t *testing.T, p *netns.Pair, addrs ...string) {
	t.Helper()
	for _, a := range addrs {
		p.Client.AddAddr(t, "c0", a+"/24")
	}
}

const srv = netns.PairServer4 + ":9000"

// A set that is full must not let new keys through (KERNEL-NOTES: the
// dynset add fails and the limiting rule does not match): the `full` rule
// refuses them, while keys already in the set keep their budget.
func TestKernelFullSetRefusesNewKeys(t *testing.T) {
	p := netns.NewPair(t)
	extraClients(t, p, "10.0.0.3", "10.0.0.4")
	p.Server.Listen(t, srv)
	loadConfig(t, p.Server, `ip access-list extended check
 seq 10 permit tcp any any eq 9000 connlimit 2
 seq 20 permit ip any any
interface s0
 ip access-group check in
`, nft.Options{SetSize: 2})
	p.Client.Expect(t, "10.0.0.1", srv, netns.Connected)
	p.Client.Expect(t, "10.0.0.3", srv, netns.Connected)
	p.Client.Expect(t, "10.0.0.4", srv, netns.Reset) // third key: set full
	p.Client.Expect(t, "10.0.0.1", srv, netns.Connected)
	p.Client.Expect(t, "10.0.0.1", srv, netns.Reset) // over its own limit
	out := p.Server.MustExec(t, "nft", "list", "counter", "inet", "slxsh", "ip_check_in_10_refused")
	if want := "packets 2 "; !strings.Contains(out, want) {
		t.Errorf("refused counter: want %q in\n%s", want, out)
	}
}

// deny ... connlimit 3: the first two pass on to the next entry, the third
// (the Nth, this one included) is refused.
func TestKernelDenyConnlimitRefusesNth(t *testing.T) {
	p := netns.NewPair(t)
	p.Server.Listen(t, srv)
	loadConfig(t, p.Server, `ip access-list extended check
 seq 10 deny tcp any any eq 9000 connlimit 3
 seq 20 permit ip any any
interface s0
 ip access-group check in
`, nft.Options{})
	p.Client.Expect(t, "", srv, netns.Connected)
	p.Client.Expect(t, "", srv, netns.Connected)
	p.Client.Expect(t, "", srv, netns.Reset)
}

// total 2: one shared budget for every source, for an `ip` entry too
// (the key is `meta nfproto`, constant in a single-family chain).
func TestKernelTotalSharedAcrossSources(t *testing.T) {
	p := netns.NewPair(t)
	extraClients(t, p, "10.0.0.3")
	p.Server.Listen(t, srv)
	loadConfig(t, p.Server, `ip access-list extended check
 seq 10 permit ip any any connlimit 2 total
interface s0
 ip access-group check in
`, nft.Options{})
	p.Client.Expect(t, "10.0.0.1", srv, netns.Connected)
	p.Client.Expect(t, "10.0.0.3", srv, netns.Connected)
	p.Client.Expect(t, "10.0.0.3", srv, netns.Reset)
	p.Client.Expect(t, "10.0.0.1", srv, netns.Reset)
}

// The implicit deny refuses TCP with a reset (through the refuse chain).
func TestKernelImplicitDenyResets(t *testing.T) {
	p := netns.NewPair(t)
	p.Server.Listen(t, srv)
	loadConfig(t, p.Server, `ip access-list extended check
 seq 10 permit tcp any any eq 22
interface s0
 ip access-group check in
`, nft.Options{})
	p.Client.Expect(t, "", srv, netns.Reset)
}

// rate per-source: one source that goes over its rate is refused while
// another source still has its own budget.
func TestKernelRatePerSource(t *testing.T) {
	p := netns.NewPair(t)
	extraClients(t, p, "10.0.0.3")
	p.Server.Listen(t, srv)
	loadConfig(t, p.Server, `ip access-list extended check
 seq 10 permit tcp any any eq 9000 rate 2 per minute burst 2
 seq 20 permit ip any any
interface s0
 ip access-group check in
`, nft.Options{})
	passed := 0
	for ; passed < 10; passed++ {
		c, got, err := p.Client.Dial("10.0.0.1", srv, netns.DialTimeout)
		if c != nil {
			c.Close()
		}
		if got == netns.Reset {
			break
		}
		if got != netns.Connected {
			t.Fatalf("attempt %d: %v (%v)", passed+1, got, err)
		}
	}
	// A bucket starts full: the burst passes, then (one token per 30 s)
	// the next attempt is refused.
	if passed != 2 {
		t.Fatalf("10.0.0.1 passed %d times, want the burst of 2", passed)
	}
	p.Client.Expect(t, "10.0.0.3", srv, netns.Connected)
}

// uid: an `out` ACL admits the connections of one local user only.
func TestKernelUIDOut(t *testing.T) {
	p := netns.NewPair(t)
	p.Server.Listen(t, srv)
	loadConfig(t, p.Client, `ip access-list extended own
 seq 10 permit tcp any any eq 9000 uid 65534
interface c0
 ip access-group own out
`, nft.Options{})
	p.Client.Expect(t, "", srv, netns.Reset) // root: implicit deny
	script := "import socket; socket.create_connection(('" + netns.PairServer4 + "', 9000), 3); print('connected')"
	out, err := p.Client.Exec("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", script)
	if err != nil || !strings.Contains(out, "connected") {
		t.Fatalf("uid 65534 could not connect: %v %s", err, out)
	}
}

// The reservation sets that the agent fills change admission as the session
// tracker expects: a closed gate refuses everything, a key in S_rf is
// refused, a key at layer 2 of limit 3 gets 3-2 = 1 more connection.
func TestKernelReservations(t *testing.T) {
	p := netns.NewPair(t)
	extraClients(t, p, "10.0.0.3", "10.0.0.4")
	p.Server.Listen(t, srv)
	rs := loadConfig(t, p.Server, `ip access-list extended check
 seq 10 permit tcp any any eq 9000 connlimit 3
interface s0
 ip access-group check in
`, nft.Options{})
	set := "ip_check_in_10_src_3"
	if len(rs.Sets) != 7 {
		t.Fatalf("want the limit set with gate, full set and layers 1 and 2 (7 sets), got %d", len(rs.Sets))
	}
	add := func(s, elem string) {
		p.Server.MustExec(t, "nft", "add", "element", "inet", "slxsh", s, "{ "+elem+" }")
	}
	del := func(s, elem string) {
		p.Server.MustExec(t, "nft", "delete", "element", "inet", "slxsh", s, "{ "+elem+" }")
	}
	add(nft.GateSetName(set), "ipv4")
	p.Client.Expect(t, "10.0.0.1", srv, netns.Reset)
	del(nft.GateSetName(set), "ipv4")

	add(nft.FullSetName(set), "10.0.0.3")
	add(nft.ReserveSetName(set, 1), "10.0.0.4")
	add(nft.ReserveSetName(set, 2), "10.0.0.4")
	p.Client.Expect(t, "10.0.0.3", srv, netns.Reset)
	p.Client.Expect(t, "10.0.0.4", srv, netns.Connected)
	p.Client.Expect(t, "10.0.0.4", srv, netns.Reset)
	for i := 0; i < 3; i++ {
		p.Client.Expect(t, "10.0.0.1", srv, netns.Connected)
	}
	p.Client.Expect(t, "10.0.0.1", srv, netns.Reset)
}

// block-for: a source that goes over the limit is refused on the whole ACL
// for the time given; other sources are not.
func TestKernelBlockFor(t *testing.T) {
	p := netns.NewPair(t)
	extraClients(t, p, "10.0.0.3")
	p.Server.Listen(t, srv)
	other := netns.PairServer4 + ":9001"
	p.Server.Listen(t, other)
	loadConfig(t, p.Server, `ip access-list extended check
 seq 10 permit tcp any any eq 9000 connlimit 1 block-for 60
 seq 20 permit ip any any
interface s0
 ip access-group check in
`, nft.Options{})
	open := p.Client.Expect(t, "10.0.0.1", srv, netns.Connected)
	p.Client.Expect(t, "10.0.0.1", other, netns.Connected) // not over any limit yet
	p.Client.Expect(t, "10.0.0.1", srv, netns.Reset)       // over: blocked from now on
	p.Client.Expect(t, "10.0.0.1", other, netns.Reset)
	p.Client.Expect(t, "10.0.0.3", other, netns.Connected)
	if err := netns.Echo(open); err != nil {
		t.Errorf("the session open before the block stopped working: %v", err)
	}
	out := p.Server.MustExec(t, "nft", "list", "set", "inet", "slxsh", nft.BlockedSetName(acl.IPv4, "check", acl.In))
	if !strings.Contains(out, "elements = { 10.0.0.1 expires") {
		t.Errorf("blocked set does not hold 10.0.0.1 with a 1m timeout:\n%s", out)
	}
}

// load-limit: the entry refuses while the agent has armed its load set.
func TestKernelLoadLimitSet(t *testing.T) {
	p := netns.NewPair(t)
	p.Server.Listen(t, srv)
	loadConfig(t, p.Server, `ip access-list extended check
 seq 10 permit tcp any any eq 9000 load-limit 1.50
interface s0
 ip access-group check in
`, nft.Options{})
	set := nft.LoadSetName(nft.EntryRef{Family: acl.IPv4, ACL: "check", Dir: acl.In, Seq: 10}, 150)
	p.Client.Expect(t, "", srv, netns.Connected)
	p.Server.MustExec(t, "nft", "add", "element", "inet", "slxsh", set, "{ ipv4 }")
	p.Client.Expect(t, "", srv, netns.Reset)
	p.Server.MustExec(t, "nft", "delete", "element", "inet", "slxsh", set, "{ ipv4 }")
	p.Client.Expect(t, "", srv, netns.Connected)
}
