package nft_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
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
func loadConfig(t testing.TB, ns *netns.NS, text string, o nft.Options) *nft.Ruleset {
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
	// Gates are created closed; open them as the agent does once it has
	// counted the sessions open before (none here).
	if err := applier(ns).WriteReservations(nft.LimitSets(rs), nil, nft.LimitSets(rs)); err != nil {
		t.Fatalf("open gates: %v", err)
	}
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

// The reservations that the agent writes change admission as the session
// tracker expects: a closed gate refuses everything, a key held at the
// full depth is refused, a key at depth 2 of limit 3 gets 3-2 = 1 more
// connection, and other keys get all 3.
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
	if len(rs.Sets) != 9 {
		t.Fatalf("want the limit set with gate, reserved, full, and layers 1 and 2, and the grace set (9 sets), got %d", len(rs.Sets))
	}
	limits := nft.LimitSets(rs)
	p.Server.MustExec(t, "nft", "add", "element", "inet", "slxsh", nft.GateSetName(set), "{ ipv4 }")
	p.Client.Expect(t, "10.0.0.1", srv, netns.Reset)
	if g, err := applier(p.Server).Gated(limits); err != nil || len(g) != 1 {
		t.Fatalf("Gated = %v, %v; want the one limit set", g, err)
	}
	want := []nft.Reservation{{Set: set, Key: "10.0.0.3", Depth: 3}, {Set: set, Key: "10.0.0.4", Depth: 2}}
	if err := applier(p.Server).WriteReservations(limits, want, limits); err != nil {
		t.Fatal(err)
	}
	if got, err := applier(p.Server).Reservations(limits); err != nil || !slices.Equal(got, want) {
		t.Fatalf("Reservations = %v, %v; want %v", got, err, want)
	}
	p.Client.Expect(t, "10.0.0.3", srv, netns.Reset)
	p.Client.Expect(t, "10.0.0.4", srv, netns.Connected)
	p.Client.Expect(t, "10.0.0.4", srv, netns.Reset)
	for i := 0; i < 3; i++ {
		p.Client.Expect(t, "10.0.0.1", srv, netns.Connected)
	}
	p.Client.Expect(t, "10.0.0.1", srv, netns.Reset)
	// One old session of 10.0.0.4 ends: depth 1, one more slot.
	if err := applier(p.Server).WriteReservations(limits, []nft.Reservation{want[0], {Set: set, Key: "10.0.0.4", Depth: 1}}, nil); err != nil {
		t.Fatal(err)
	}
	p.Client.Expect(t, "10.0.0.4", srv, netns.Connected)
	p.Client.Expect(t, "10.0.0.4", srv, netns.Reset)
}

// TestKernelExactDepths: a key held at the depth of its E old sessions
// admits exactly T-E new connections for T up to nft.ExactLayers and
// beyond, within ceil(E/16) of it, never more; lowering its depth by one
// gives back exactly one slot.
func TestKernelExactDepths(t *testing.T) {
	for _, c := range []struct{ t, e int }{{7, 5}, {4, 3}, {8, 7}, {10, 5}, {64, 63}, {100, 65}, {100, 90}} {
		t.Run(fmt.Sprintf("T%d_E%d", c.t, c.e), func(t *testing.T) {
			p := netns.NewPair(t)
			p.Server.Listen(t, srv)
			rs := loadConfig(t, p.Server, fmt.Sprintf(`ip access-list extended check
 seq 10 permit tcp any any eq 9000 connlimit %d total
interface s0
 ip access-group check in
`, c.t), nft.Options{})
			limits := nft.LimitSets(rs)
			set := limits[0].Name
			d := nft.Depth(c.t, c.e)
			if d < c.e || d-c.e > (c.e+15)/16 || (c.e <= nft.ExactLayers && d != c.e) {
				t.Fatalf("Depth(%d, %d) = %d: not within the bound", c.t, c.e, d)
			}
			if err := applier(p.Server).WriteReservations(limits, []nft.Reservation{{Set: set, Key: nft.TotalKey, Depth: d}}, nil); err != nil {
				t.Fatal(err)
			}
			admitted := 0
			for range c.t + 1 {
				c, got, _ := p.Client.Dial("", srv, netns.DialTimeout)
				if got != netns.Connected {
					break
				}
				t.Cleanup(func() { c.Close() })
				admitted++
			}
			if admitted != c.t-d {
				t.Fatalf("admitted %d with %d old sessions under connlimit %d; want %d (depth %d)", admitted, c.e, c.t, c.t-d, d)
			}
			if d == c.e && c.e > 1 {
				if err := applier(p.Server).WriteReservations(limits, []nft.Reservation{{Set: set, Key: nft.TotalKey, Depth: d - 1}}, nil); err != nil {
					t.Fatal(err)
				}
				p.Client.Expect(t, "", srv, netns.Connected)
				p.Client.Expect(t, "", srv, netns.Reset)
			}
		})
	}
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
	out := p.Server.MustExec(t, "nft", "list", "set", "inet", "slxsh", nft.BlockedSetName(nft.EntryRef{Family: acl.IPv4, ACL: "check", Dir: acl.In, Seq: 10}))
	if !strings.Contains(out, "elements = { 10.0.0.1 expires") {
		t.Errorf("blocked set does not hold 10.0.0.1 with a 1m timeout:\n%s", out)
	}
}

// A blocked source is refused as the entry that blocked it refuses: with
// `refuse drop`, silently, on every port of the ACL.
func TestKernelBlockForRefuseDrop(t *testing.T) {
	p := netns.NewPair(t)
	p.Server.Listen(t, srv)
	other := netns.PairServer4 + ":9001"
	p.Server.Listen(t, other)
	loadConfig(t, p.Server, `ip access-list extended check
 seq 10 permit tcp any any eq 9000 connlimit 1 block-for 60 refuse drop
 seq 20 permit ip any any
interface s0
 ip access-group check in
`, nft.Options{})
	p.Client.Expect(t, "10.0.0.1", srv, netns.Connected)
	p.Client.Expect(t, "10.0.0.1", srv, netns.TimedOut) // over: blocked from now on
	p.Client.Expect(t, "10.0.0.1", other, netns.TimedOut)
}

// A full blocked set fails closed: a source over the limit that cannot be
// locked out sets the entry's full flag, and the ACL refuses every new
// connection until it expires (or is cleared), never letting the source
// through unblocked.
func TestKernelBlockedSetFullFailsClosed(t *testing.T) {
	p := netns.NewPair(t)
	extraClients(t, p, "10.0.0.3", "10.0.0.4")
	p.Server.Listen(t, srv)
	other := netns.PairServer4 + ":9001"
	p.Server.Listen(t, other)
	loadConfig(t, p.Server, `ip access-list extended check
 seq 10 permit tcp any any eq 9000 rate 1 per minute total block-for 60
 seq 20 permit ip any any
interface s0
 ip access-group check in
`, nft.Options{SetSize: 1})
	p.Client.Expect(t, "10.0.0.1", srv, netns.Connected)
	p.Client.Expect(t, "10.0.0.1", srv, netns.Reset) // over: 10.0.0.1 fills the blocked set
	p.Client.Expect(t, "10.0.0.3", other, netns.Connected)
	p.Client.Expect(t, "10.0.0.3", srv, netns.Reset) // over, and the set is full
	p.Client.Expect(t, "10.0.0.3", other, netns.Reset)
	p.Client.Expect(t, "10.0.0.4", other, netns.Reset) // everyone, while the flag lasts
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
