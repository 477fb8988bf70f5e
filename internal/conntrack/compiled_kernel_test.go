package conntrack

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/netns"
	"github.com/slxsh/slxsh/internal/nft"
)

// compiledConfig is the SLX example on the server's s0 (in):
// `seq 10 permit tcp host C host S eq 22 connlimit N` (none when n < 0) and
// `seq 20 permit ip any any`.
func compiledConfig(t *testing.T, n int) *acl.Config {
	t.Helper()
	c := acl.New()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.EnsureACL(acl.IPv4, "check")
	must(err)
	if n >= 0 {
		must(c.AddEntry(acl.IPv4, "check", &acl.Entry{Seq: 10, Action: acl.Permit, Proto: acl.ProtoTCP,
			Src: host("10.0.0.1"), Dst: host("10.0.0.2"), DstPort: eq(22), Connlimits: limits(n, acl.PerSource, 0)}))
	}
	must(c.AddEntry(acl.IPv4, "check", &acl.Entry{Seq: 20, Action: acl.Permit, Proto: acl.ProtoAny}))
	_, err = c.EnsureInterface(acl.IfLinux, "s0")
	must(err)
	must(c.SetAccessGroup(acl.IfLinux, "s0", acl.IPv4, acl.In, "check"))
	return c
}

// install does what the agent does for one change: compile, Prepare,
// apply, Installed.
func install(t *testing.T, ap *nft.Applier, tr *Tracker, c *acl.Config) {
	t.Helper()
	rs, err := nft.Compile(c, nft.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Prepare(rs); err != nil {
		t.Fatal(err)
	}
	if err := ap.Apply(rs); err != nil {
		t.Fatal(err)
	}
	if err := tr.Installed(c, rs); err != nil {
		t.Fatal(err)
	}
}

// TestKernelCompiledExistingSessions is issue 5's first two Accept points
// with the real compiler and applier: 3 sessions open from C under `permit
// ip any any`, then `connlimit 3` arrives: C's 4th is refused at once; after
// C closes one, exactly one more is admitted. Then the table is deleted by
// someone else with 3 open: after it is restored, C's 4th is still refused.
func TestKernelCompiledExistingSessions(t *testing.T) {
	p := netns.NewPair(t)
	ap := nft.NewApplier(nft.DefaultTable, nftables.WithNetNSFd(p.Server.Fd()))
	tr, err := NewTracker(TrackerOptions{Owner: nft.NewApplier(nft.DefaultTable, nftables.WithNetNSFd(p.Server.Fd())), NetNS: p.Server.Fd()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	install(t, ap, tr, compiledConfig(t, -1))
	p.Server.Listen(t, "10.0.0.2:22")
	old := dial(t, p.Client, "10.0.0.2:22", 3)

	limited := compiledConfig(t, 3)
	install(t, ap, tr, limited)
	p.Client.Expect(t, "", "10.0.0.2:22", netns.Reset)
	p.Client.Expect(t, "", "10.0.0.2:22", netns.Reset)

	old[0].Close()
	waitOpen(t, tr.ct, 2)
	if err := tr.Refresh(); err != nil {
		t.Fatal(err)
	}
	p.Client.Expect(t, "", "10.0.0.2:22", netns.Connected)
	p.Client.Expect(t, "", "10.0.0.2:22", netns.Reset)
	keys, err := tr.Sessions(limited, acl.IPv4, "check", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].Key != "10.0.0.1" || keys[0].Sessions != 3 || keys[0].Limit != 3 {
		t.Errorf("Sessions = %+v, want 10.0.0.1 with 3 of 3", keys)
	}

	// Someone deletes the table; the agent restores it.
	p.Server.MustExec(t, "nft", "delete", "table", "inet", nft.DefaultTable)
	install(t, ap, tr, limited)
	p.Client.Expect(t, "", "10.0.0.2:22", netns.Reset)
	p.Client.MustExec(t, "ip", "addr", "add", "10.0.0.7/24", "dev", "c0")
	p.Client.Expect(t, "10.0.0.7", "10.0.0.2:22", netns.Connected) // other sources are not limited by seq 10
}

// TestKernelCompiledRoutedDeny: traffic routed through the middle
// namespace, the ACL on its client-side interface rc (in). A permit turned
// into deny under `existing-sessions reset` ends C's sessions on their next
// packet (ct mark + the compiled reset rule); under keep they go on.
func TestKernelCompiledRoutedDeny(t *testing.T) {
	for _, policy := range []acl.SessionPolicy{acl.Keep, acl.Reset} {
		t.Run([]string{"keep", "reset"}[policy], func(t *testing.T) {
			r := netns.NewRouted(t)
			ap := nft.NewApplier(nft.DefaultTable, nftables.WithNetNSFd(r.Router.Fd()))
			loc, err := NewRouteLocator(r.Router.Fd())
			if err != nil {
				t.Fatal(err)
			}
			defer loc.Close()
			tr, err := NewTracker(TrackerOptions{Owner: nft.NewApplier(nft.DefaultTable, nftables.WithNetNSFd(r.Router.Fd())), NetNS: r.Router.Fd(), Locator: loc})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			cfg := func(action acl.Action) *acl.Config {
				c := acl.New()
				c.ExistingSessions = policy
				if _, err := c.EnsureACL(acl.IPv4, "edge"); err != nil {
					t.Fatal(err)
				}
				for _, e := range []*acl.Entry{
					{Seq: 10, Action: action, Proto: acl.ProtoTCP, Dst: host("10.2.0.2"), DstPort: eq(22)},
					{Seq: 20, Action: acl.Permit, Proto: acl.ProtoAny},
				} {
					if err := c.AddEntry(acl.IPv4, "edge", e); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := c.EnsureInterface(acl.IfLinux, "rc"); err != nil {
					t.Fatal(err)
				}
				if err := c.SetAccessGroup(acl.IfLinux, "rc", acl.IPv4, acl.In, "edge"); err != nil {
					t.Fatal(err)
				}
				return c
			}
			install(t, ap, tr, cfg(acl.Permit))
			r.Server.Listen(t, "10.2.0.2:22")
			conns := dial(t, r.Client, "10.2.0.2:22", 2)

			install(t, ap, tr, cfg(acl.Deny))
			r.Client.Expect(t, "", "10.2.0.2:22", netns.Reset) // new ones are denied either way
			for i, c := range conns {
				if policy == acl.Reset {
					expectReset(t, c)
				} else if err := netns.Echo(c); err != nil {
					t.Errorf("session %d under keep: %v", i, err)
				}
			}
		})
	}
}

// limitConfig is `seq 10 permit tcp any any eq 22 <cl>` + `seq 20 permit
// ip any any` in family f on s0 (in); cl nil: no limit.
func limitConfig(t *testing.T, f acl.Family, cl *acl.Connlimit, policy acl.SessionPolicy) *acl.Config {
	t.Helper()
	c := acl.New()
	c.ExistingSessions = policy
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.EnsureACL(f, "check")
	must(err)
	if cl != nil {
		must(c.AddEntry(f, "check", &acl.Entry{Seq: 10, Action: acl.Permit, Proto: acl.ProtoTCP, DstPort: eq(22), Connlimits: []acl.Connlimit{*cl}}))
	}
	must(c.AddEntry(f, "check", &acl.Entry{Seq: 20, Action: acl.Permit, Proto: acl.ProtoAny}))
	_, err = c.EnsureInterface(acl.IfLinux, "s0")
	must(err)
	must(c.SetAccessGroup(acl.IfLinux, "s0", f, acl.In, "check"))
	return c
}

// TestKernelCompiledKeys: existing sessions are held for every key kind
// the compiler builds: IPv6 per-prefix 64 and IPv4 total, each shared by
// two sources.
func TestKernelCompiledKeys(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fam      acl.Family
		cl       *acl.Connlimit
		server   string
		a, b     string // two sources sharing the key
		addrs    []string
		key      string
		outsider string // a source with its own budget ("" when none)
	}{{
		name: "ipv6 per-prefix 64", fam: acl.IPv6, cl: limit(3, acl.PerPrefix, 64),
		server: "[fd00::2]:22", a: "fd00::1", b: "fd00::11", addrs: []string{"fd00::11/64"},
		key: "fd00::/64",
	}, {
		name: "ipv4 total", fam: acl.IPv4, cl: limit(3, acl.Total, 0),
		server: "10.0.0.2:22", a: "10.0.0.1", b: "10.0.0.11", addrs: []string{"10.0.0.11/24"},
		key: TotalKey,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			p := netns.NewPair(t)
			for _, a := range tc.addrs {
				p.Client.AddAddr(t, "c0", a)
			}
			ap := nft.NewApplier(nft.DefaultTable, nftables.WithNetNSFd(p.Server.Fd()))
			tr, err := NewTracker(TrackerOptions{Owner: nft.NewApplier(nft.DefaultTable, nftables.WithNetNSFd(p.Server.Fd())), NetNS: p.Server.Fd()})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			install(t, ap, tr, limitConfig(t, tc.fam, nil, acl.Keep))
			p.Server.Listen(t, tc.server)
			first := p.Client.Expect(t, tc.a, tc.server, netns.Connected)
			p.Client.Expect(t, tc.b, tc.server, netns.Connected)

			cfg := limitConfig(t, tc.fam, tc.cl, acl.Keep)
			install(t, ap, tr, cfg)
			keys, err := tr.Sessions(cfg, tc.fam, "check", 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != 1 || keys[0].Key != tc.key || keys[0].Sessions != 2 {
				t.Fatalf("Sessions = %+v, want %s with 2", keys, tc.key)
			}
			// 2 old of 3: one more for the pair, from either source.
			p.Client.Expect(t, tc.b, tc.server, netns.Connected)
			p.Client.Expect(t, tc.a, tc.server, netns.Reset)
			p.Client.Expect(t, tc.b, tc.server, netns.Reset)
			first.Close()
			waitOpen(t, tr.ct, 1)
			if err := tr.Refresh(); err != nil {
				t.Fatal(err)
			}
			p.Client.Expect(t, tc.a, tc.server, netns.Connected)
			p.Client.Expect(t, tc.a, tc.server, netns.Reset)
		})
	}
}

// TestKernelCompiledAgentDiedWhileGated: the agent dies between Prepare
// and Installed (the new limit is installed, its gate closed, nothing
// counted). The restarted agent's tracker finds the closed gate on its
// first refresh, counts the open sessions and opens it.
func TestKernelCompiledAgentDiedWhileGated(t *testing.T) {
	p := netns.NewPair(t)
	ap := nft.NewApplier(nft.DefaultTable, nftables.WithNetNSFd(p.Server.Fd()))
	first, err := NewTracker(TrackerOptions{Owner: nft.NewApplier(nft.DefaultTable, nftables.WithNetNSFd(p.Server.Fd())), NetNS: p.Server.Fd()})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	install(t, ap, first, compiledConfig(t, -1))
	p.Server.Listen(t, "10.0.0.2:22")
	old := dial(t, p.Client, "10.0.0.2:22", 3)

	limited := compiledConfig(t, 3)
	rs, err := nft.Compile(limited, nft.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Prepare(rs); err != nil {
		t.Fatal(err)
	}
	if err := ap.Apply(rs); err != nil {
		t.Fatal(err)
	}
	// ... and the agent dies here.

	second, err := NewTracker(TrackerOptions{Owner: nft.NewApplier(nft.DefaultTable, nftables.WithNetNSFd(p.Server.Fd())), NetNS: p.Server.Fd()})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	install(t, ap, second, limited) // the restarted agent adopts its table
	if err := second.Refresh(); err != nil {
		t.Fatal(err)
	}
	set := LimitSets(rs)[0].Name
	if diff := cmp.Diff([]Reservation{{Set: set, Key: "10.0.0.1", Depth: 3}}, second.Held()); diff != "" {
		t.Fatalf("Held after the first refresh (-want +got):\n%s", diff)
	}
	p.Client.Expect(t, "", "10.0.0.2:22", netns.Reset)
	old[0].Close()
	waitOpen(t, second.ct, 2)
	if err := second.Refresh(); err != nil {
		t.Fatal(err)
	}
	p.Client.Expect(t, "", "10.0.0.2:22", netns.Connected) // the gate is open
	p.Client.Expect(t, "", "10.0.0.2:22", netns.Reset)
}

// TestKernelCompiledLowered: limit lowered 5 -> 2 with 5 open, with the
// compiler. reset: exactly the 3 newest get ECONNRESET, the 2 oldest keep
// exchanging data, a new one is refused. keep: all 5 go on, and nothing is
// admitted until C is below 2.
func TestKernelCompiledLowered(t *testing.T) {
	for _, policy := range []acl.SessionPolicy{acl.Keep, acl.Reset} {
		t.Run([]string{"keep", "reset"}[policy], func(t *testing.T) {
			p := netns.NewPair(t)
			ap := nft.NewApplier(nft.DefaultTable, nftables.WithNetNSFd(p.Server.Fd()))
			tr, err := NewTracker(TrackerOptions{Owner: nft.NewApplier(nft.DefaultTable, nftables.WithNetNSFd(p.Server.Fd())), NetNS: p.Server.Fd()})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			five := compiledConfig(t, 5)
			five.ExistingSessions = policy
			install(t, ap, tr, five)
			p.Server.Listen(t, "10.0.0.2:22")
			conns := dial(t, p.Client, "10.0.0.2:22", 5)
			p.Client.Expect(t, "", "10.0.0.2:22", netns.Reset)

			two := compiledConfig(t, 2)
			two.ExistingSessions = policy
			install(t, ap, tr, two)
			for i, c := range conns {
				if policy == acl.Keep || i < 2 {
					if err := netns.Echo(c); err != nil {
						t.Errorf("session %d: %v, want it kept", i, err)
					}
					continue
				}
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("session %d: read got %v, want ECONNRESET", i, err)
				}
			}
			p.Client.Expect(t, "", "10.0.0.2:22", netns.Reset)
			keys, err := tr.Sessions(two, acl.IPv4, "check", 10)
			if err != nil {
				t.Fatal(err)
			}
			want := map[acl.SessionPolicy]int{acl.Keep: 5, acl.Reset: 2}[policy]
			if len(keys) != 1 || keys[0].Sessions != want || keys[0].Limit != 2 {
				t.Errorf("Sessions = %+v, want %d of 2", keys, want)
			}
			if policy == acl.Keep {
				for _, c := range conns[1:] {
					c.Close()
				}
				waitOpen(t, tr.ct, 1)
				if err := tr.Refresh(); err != nil {
					t.Fatal(err)
				}
				p.Client.Expect(t, "", "10.0.0.2:22", netns.Connected)
				p.Client.Expect(t, "", "10.0.0.2:22", netns.Reset)
			}
		})
	}
}
