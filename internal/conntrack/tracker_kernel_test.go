package conntrack

import (
	"context"
	"errors"
	"github.com/google/nftables"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/netns"
	"github.com/slxsh/slxsh/internal/nft"
)

// loweredSet is the limit set of loweredText's seq 10.
const loweredSet = "ip_check_in_10_src_2"

// loweredText is `connlimit 2` on 10.0.0.2 port 22, then `permit ip any
// any`, on s0 in, with existing-sessions POLICY.
const loweredText = `connlimit existing-sessions POLICY
ip access-list extended check
 seq 10 permit tcp any host 10.0.0.2 eq 22 connlimit 2
 seq 20 permit ip any any
interface s0
 ip access-group check in
`

// startLowered opens 5 sessions under no limit, then installs the limit of
// 2 through a Tracker as the agent does: Prepare, apply, Installed.
func startLowered(t *testing.T, policy acl.SessionPolicy) (*netns.Pair, *Tracker, []net.Conn, *acl.Config) {
	p := netns.NewPair(t)
	p.Server.MustExec(t, "sysctl", "-q", "-w", "net.netfilter.nf_conntrack_timestamp=1")
	applyConfig(t, p.Server, unlimitedConfig)
	p.Server.Listen(t, "10.0.0.2:22")
	conns := dial(t, p.Client, "10.0.0.2:22", 5)

	ap := nft.NewApplier(nft.DefaultTable, nftables.WithNetNSFd(p.Server.Fd()))
	tr, err := NewTracker(TrackerOptions{Owner: ap, NetNS: p.Server.Fd()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	word := map[acl.SessionPolicy]string{acl.Keep: "keep", acl.Reset: "reset"}[policy]
	cfg, err := cli.ParseConfig(strings.Replace(loweredText, "POLICY", word, 1))
	if err != nil {
		t.Fatal(err)
	}
	install(t, ap, tr, cfg)
	return p, tr, conns, cfg
}

func TestKernelTrackerLoweredReset(t *testing.T) {
	p, tr, conns, cfg := startLowered(t, acl.Reset)
	// The 3 newest are reset at once (host sockets), the 2 oldest go on.
	for i, c := range conns {
		if i < 2 {
			if err := netns.Echo(c); err != nil {
				t.Errorf("old session %d: %v, want it kept", i, err)
			}
			continue
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("session %d: read got %v, want ECONNRESET", i, err)
		}
	}
	p.Client.Expect(t, "", "10.0.0.2:22", netns.Reset)
	got, err := tr.Sessions(cfg, acl.IPv4, "check", 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]KeyCount{{ACL: "check", Seq: 10, Key: "10.0.0.1", Sessions: 2, Old: 2, Limit: 2, AtLimit: true}}, got); diff != "" {
		t.Errorf("Sessions (-want +got):\n%s", diff)
	}

	// One old session ends: a refresh gives exactly one back.
	conns[0].Close()
	waitOpen(t, tr.ct, 1)
	if err := tr.Refresh(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Reservation{{Set: loweredSet, Key: "10.0.0.1", Depth: 1}}, tr.Held()); diff != "" {
		t.Errorf("Held after refresh (-want +got):\n%s", diff)
	}
	p.Client.Expect(t, "", "10.0.0.2:22", netns.Connected)
	p.Client.Expect(t, "", "10.0.0.2:22", netns.Reset)
}

func TestKernelTrackerLoweredKeep(t *testing.T) {
	p, tr, conns, cfg := startLowered(t, acl.Keep)
	for i, c := range conns {
		if err := netns.Echo(c); err != nil {
			t.Errorf("session %d under keep: %v", i, err)
		}
	}
	p.Client.Expect(t, "", "10.0.0.2:22", netns.Reset)
	// Down to 2 open: still no admission (2 old fill the limit of 2).
	for _, c := range conns[2:] {
		c.Close()
	}
	waitOpen(t, tr.ct, 2)
	if err := tr.Refresh(); err != nil {
		t.Fatal(err)
	}
	p.Client.Expect(t, "", "10.0.0.2:22", netns.Reset)
	// Below 2: the refresh loop gives one back.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tr.Run(ctx, 20*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	conns[1].Close()
	waitHeld(t, tr, []Reservation{{Set: loweredSet, Key: "10.0.0.1", Depth: 1}})
	p.Client.Expect(t, "", "10.0.0.2:22", netns.Connected)
	p.Client.Expect(t, "", "10.0.0.2:22", netns.Reset)

	// clear access-list sessions ... source C ends all of C's sessions.
	if err := tr.ClearSessions(cfg, acl.IPv4, "check", 10, netip.MustParseAddr("10.0.0.1")); err != nil {
		t.Fatal(err)
	}
	conns[0].SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := conns[0].Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("cleared session: read got %v, want ECONNRESET", err)
	}
}

// TestKernelTrackerPermitTurnedDeny: `seq 10 deny tcp any any eq 22` on s0
// in replaces a permit. reset ends C's sessions that came in through s0; a
// session through another interface (s1, no ACL) is left alone thanks to
// the route locator; keep leaves everything.
func TestKernelTrackerPermitTurnedDeny(t *testing.T) {
	for _, policy := range []acl.SessionPolicy{acl.Keep, acl.Reset} {
		t.Run([]string{"keep", "reset"}[policy], func(t *testing.T) {
			p := netns.NewPair(t)
			netns.Link(t, p.Client, "c1", p.Server, "s1")
			p.Client.AddAddr(t, "c1", "10.9.0.1/24")
			p.Server.AddAddr(t, "s1", "10.9.0.2/24")
			applyConfig(t, p.Server, unlimitedConfig)
			p.Server.Listen(t, "10.0.0.2:22")
			p.Server.Listen(t, "10.9.0.2:22")
			viaS0 := dial(t, p.Client, "10.0.0.2:22", 2)
			viaS1 := dial(t, p.Client, "10.9.0.2:22", 1)

			loc, err := NewRouteLocator(p.Server.Fd())
			if err != nil {
				t.Fatal(err)
			}
			defer loc.Close()
			tr, err := NewTracker(TrackerOptions{Owner: nft.NewApplier(nft.DefaultTable, nftables.WithNetNSFd(p.Server.Fd())), NetNS: p.Server.Fd(), Locator: loc})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			c := acl.New()
			c.ExistingSessions = policy
			c.ACLs = []*acl.ACL{{Name: "check", Family: acl.IPv4, Entries: []*acl.Entry{
				{Seq: 10, Action: acl.Deny, Proto: 6, DstPort: eq(22)},
				{Seq: 20, Action: acl.Permit, Proto: acl.ProtoAny},
			}}}
			c.Interfaces = []*acl.Interface{{Kind: acl.IfLinux, Name: "s0", Groups: [2][2]string{{"check", ""}, {"", ""}}}}
			if err := tr.Installed(c, &nft.Ruleset{Table: "slxsh"}); err != nil {
				t.Fatal(err)
			}
			for _, conn := range viaS0 {
				conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				_, err := conn.Read(make([]byte, 1))
				reset := errors.Is(err, syscall.ECONNRESET)
				if reset != (policy == acl.Reset) {
					t.Errorf("session via s0: read got %v; want reset %v", err, policy == acl.Reset)
				}
			}
			if err := netns.Echo(viaS1[0]); err != nil {
				t.Errorf("session via s1 (no ACL there): %v", err)
			}
		})
	}
}

// waitHeld waits (bounded) until the tracker holds want.
func waitHeld(t *testing.T, tr *Tracker, want []Reservation) {
	t.Helper()
	var got []Reservation
	for range 100 {
		if got = tr.Held(); cmp.Equal(got, want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("held %v, want %v", got, want)
}

// TestKernelTrackerRefreshFromIndex proves the refresh's source of old
// sessions (Index.Old) against a real dump: at every refresh the depth
// held is what Shrink and Plan make of a dump of the OldMark sessions,
// and never below it. First with silent flows among them (open before
// the index listened: their OldMark is set without an event, so the
// index must dump), then with followed flows alone, which it must
// count from events, without a dump.
func TestKernelTrackerRefreshFromIndex(t *testing.T) {
	p := netns.NewPair(t)
	ap, _ := applyConfig(t, p.Server, unlimitedConfig)
	p.Server.Listen(t, "10.0.0.2:22")
	silent := dialSilent(t, p.Client, p.Server, "10.0.0.2:22", 2)
	tr, err := NewTracker(TrackerOptions{Owner: ap, NetNS: p.Server.Fd()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if tr.idx.ev == nil {
		t.Fatal("no conntrack events: the test is about them")
	}
	cfg, err := cli.ParseConfig(strings.NewReplacer("POLICY", "keep", "connlimit 2", "connlimit 10").Replace(loweredText))
	if err != nil {
		t.Fatal(err)
	}
	// The first dump, under the limit to come (without one the index is
	// idle and listens to nothing): the 2 are silent.
	if err := tr.idx.Update(Bindings(cfg, tr.opts.IfName)); err != nil {
		t.Fatal(err)
	}
	followed := dial(t, p.Client, "10.0.0.2:22", 4)
	install(t, ap, tr, cfg)
	if diff := cmp.Diff([]Reservation{{Set: "ip_check_in_10_src_10", Key: "10.0.0.1", Depth: 6}}, tr.Held()); diff != "" {
		t.Fatalf("Held after install (-want +got):\n%s", diff)
	}
	tr.mu.Lock()
	bs, sets := Bindings(tr.cfg, tr.opts.IfName), tr.sets
	tr.mu.Unlock()

	// refreshTo refreshes until the tracker holds what a dump plans now,
	// failing at once if it ever holds less.
	refreshTo := func(step string, open int) {
		t.Helper()
		waitOpen(t, tr.ct, open)
		marked, err := tr.ct.DumpMarked(OldMark)
		if err != nil {
			t.Fatal(err)
		}
		want := Shrink(tr.Held(), Plan(sets, Attribute(bs, marked, nil)))
		if len(want) != 1 || want[0].Depth != open {
			t.Fatalf("%s: a dump plans %v, want depth %d", step, want, open)
		}
		for range 20 {
			if err := tr.Refresh(); err != nil {
				t.Fatal(err)
			}
			got := tr.Held()
			if len(got) != 1 || got[0].Depth < open {
				t.Fatalf("%s: held %v below the %d old sessions open", step, got, open)
			}
			if cmp.Equal(got, want) {
				return
			}
			time.Sleep(20 * time.Millisecond) // an ending not yet delivered
		}
		t.Fatalf("%s: held %v, a dump plans %v", step, tr.Held(), want)
	}

	silent[0].Close()
	refreshTo("a silent old session ended", 5)

	// The silent flows gone from the table: the next dump finds none left.
	gone := flowsFrom(t, tr.ct, silent)
	silent[1].Close()
	for _, f := range gone {
		p.Server.MustExec(t, "conntrack", "-D", "-p", "tcp", "-s", f.Src.String(), "-d", f.Dst.String(),
			"--sport", strconv.Itoa(int(f.SrcPort)), "--dport", strconv.Itoa(int(f.DstPort)))
	}
	refreshTo("silent old sessions deleted", 4)
	tr.idx.mu.Lock()
	gen, left := tr.idx.gen, tr.idx.silent
	tr.idx.mu.Unlock()
	if left != 0 {
		t.Fatalf("index still holds %d silent flows", left)
	}

	for _, c := range followed[:2] {
		c.Close()
	}
	refreshTo("followed old sessions ended", 2)
	tr.idx.mu.Lock()
	dumps := tr.idx.gen - gen
	tr.idx.mu.Unlock()
	if dumps != 0 {
		t.Errorf("the index dumped %d times for followed flows alone, want events only", dumps)
	}
}
