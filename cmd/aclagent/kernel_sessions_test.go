package main

// Issue 5's acceptance through the real binaries: sessions open before a
// limit, lowered limits, permit turned into deny, routed traffic and `clear
// access-list sessions`, each with `show access-list sessions` compared to
// the sessions the client really holds (ss in the client's namespace).

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/netns"
)

// shownSessions parses `show access-list sessions ip NAME [seq N]` (name
// may carry the seq filter) into "SEQ KEY" -> "S/L", with " at limit"
// appended when the key is marked and " old=N" when N of its sessions
// were open before the limit.
func shownSessions(t *testing.T, ag *agentProc, name string) map[string]string {
	t.Helper()
	out := ag.mustShell("", "-c", "show access-list sessions ip "+name)
	seqLine := regexp.MustCompile(`^ seq (\d+) `)
	keyLine := regexp.MustCompile(`^   (\S+) +(\d+/\d+)(  at limit)?(?: \((\d+) open before the limit\))?$`)
	got := map[string]string{}
	seq := ""
	for _, l := range strings.Split(out, "\n") {
		if m := seqLine.FindStringSubmatch(l); m != nil {
			seq = m[1]
		} else if m := keyLine.FindStringSubmatch(l); m != nil {
			v := m[2]
			if m[3] != "" {
				v += " at limit"
			}
			if m[4] != "" {
				v += " old=" + m[4]
			}
			got[seq+" "+m[1]] = v
		}
	}
	return got
}

// heldSessions counts, per source address, the established TCP
// connections to port that ns holds (ss: the kernel's view of the client's
// sockets, independent of conntrack and of the agent).
func heldSessions(t *testing.T, ns *netns.NS, port int) map[string]int {
	t.Helper()
	out := ns.MustExec(t, "ss", "-Htn", "state", "established", "dport", "=", ":"+strconv.Itoa(port))
	got := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		ap, err := netip.ParseAddrPort(f[len(f)-2])
		if err != nil {
			t.Fatalf("ss line %q: %v", l, err)
		}
		got[ap.Addr().Unmap().String()]++
	}
	return got
}

// expectShown waits (bounded) until `show access-list sessions ip name`
// lists exactly want, and checks that the counts are the sessions the
// client holds to port: a key is a source here.
func expectShown(t *testing.T, ag *agentProc, client *netns.NS, port int, name, seq string, limit int, want map[string]int) {
	t.Helper()
	expectShownOld(t, ag, client, port, name, seq, limit, want, nil)
}

// expectShownOld is expectShown that also checks how many sessions of each
// key were open before the limit (old nil: not checked).
func expectShownOld(t *testing.T, ag *agentProc, client *netns.NS, port int, name, seq string, limit int, want, old map[string]int) {
	t.Helper()
	exp := map[string]string{}
	for src, n := range want {
		v := fmt.Sprintf("%d/%d", n, limit)
		if n >= limit {
			v += " at limit"
		}
		if old[src] > 0 {
			v += fmt.Sprintf(" old=%d", old[src])
		}
		exp[seq+" "+src] = v
	}
	oldRE := regexp.MustCompile(` old=\d+$`)
	var shown map[string]string
	var held map[string]int
	for range 30 { // at most 3 s for closing sockets to settle
		shown, held = shownSessions(t, ag, name), heldSessions(t, client, port)
		if old == nil {
			for k, v := range shown {
				shown[k] = oldRE.ReplaceAllString(v, "")
			}
		}
		if maps.Equal(shown, exp) && maps.Equal(held, want) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("show access-list sessions ip %s = %v, want %v; the client holds %v", name, shown, exp, held)
}

// expectConnReset writes on c and expects ECONNRESET within 2 s (at once
// for the host's own sockets, on this next packet for routed ones).
func expectConnReset(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	defer c.SetDeadline(time.Time{})
	// The socket reports a reset once: to whichever call comes first.
	_, err := c.Write([]byte("ping\n"))
	if err == nil {
		_, err = io.ReadFull(c, make([]byte, 5))
	}
	if err == nil {
		_, err = io.ReadFull(c, make([]byte, 1))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("%s: got %v, want ECONNRESET within 2 s", what, err)
	}
}

// admitOneMore waits (bounded) until the refresh loop gives back the
// budget of an ended old session: one dial is admitted, the next refused.
func admitOneMore(t *testing.T, ns *netns.NS, local, addr string, ag *agentProc) net.Conn {
	t.Helper()
	for range 50 { // the agent refreshes every second; allow 5
		c, got, err := ns.Dial(local, addr, netns.DialTimeout)
		if got == netns.Connected {
			t.Cleanup(func() { c.Close() })
			if err := netns.Echo(c); err != nil {
				t.Fatalf("admitted but echo failed: %v", err)
			}
			ns.Expect(t, local, addr, netns.Reset) // exactly one more
			return c
		}
		if got != netns.Reset {
			t.Fatalf("dial %s: %v (%v), want refused or admitted", addr, got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no session admitted within 5 s after an old one ended:\n%s", ag.log)
	return nil
}

// sessionsSetup is slxSetup with the ACL check applied on management 0 (s0):
// entry (seq 10) and `seq 20 permit ip any any`; entry "" leaves seq 10 out.
func sessionsSetup(t *testing.T, policy, entry string) (*netns.Pair, *agentProc) {
	t.Helper()
	p, ag := slxSetup(t)
	cfg := "configure terminal\nconnlimit existing-sessions " + policy + "\nip access-list extended check\n"
	if entry != "" {
		cfg += entry + "\n"
	}
	ag.mustShell(cfg + "seq 20 permit ip any any\nexit\ninterface management 0\nip access-group check in\nend\n")
	return p, ag
}

// setEntry replaces seq 10 of check with entry.
func setEntry(ag *agentProc, entry string) {
	ag.mustShell("configure terminal\nip access-list extended check\nno seq 10\n" + entry + "\nend\n")
}

var slxEntry = fmt.Sprintf("seq 10 permit tcp host %s host %s eq 22 connlimit %%d", netns.PairClient4, netns.PairServer4)

// TestKernelSessionsSLXExample is issue 5's first two Accept points through
// slxsh and aclagent: 3 sessions open from C under `permit ip any any`; the
// SLX entry `connlimit 3` is applied: C's 4th is refused at once; after C
// closes one, exactly one more is admitted. Then the table is deleted by
// someone else with 3 open: after the agent restores it, C's 4th is still
// refused, and again exactly one more after C closes one.
func TestKernelSessionsSLXExample(t *testing.T) {
	p, ag := sessionsSetup(t, "keep", "")
	var open []net.Conn
	for range 3 {
		open = append(open, p.Client.Expect(t, "", ssh, netns.Connected))
	}

	ag.mustShell("configure terminal\nip access-list extended check\n" + fmt.Sprintf(slxEntry, 3) + "\nend\n")
	p.Client.Expect(t, "", ssh, netns.Reset) // at once: the first dial after the change
	expectShown(t, ag, p.Client, 22, "check", "10", 3, map[string]int{netns.PairClient4: 3})
	if show := ag.mustShell("", "-c", "show access-list ip check"); !strings.Contains(show, ", 1 at limit)") {
		t.Errorf("show access-list does not count the key at its limit:\n%s", show)
	}

	open[0].Close()
	open = append(open[1:], admitOneMore(t, p.Client, "", ssh, ag))
	expectShown(t, ag, p.Client, 22, "check", "10", 3, map[string]int{netns.PairClient4: 3})

	ag.ns.MustExec(t, "nft", "delete", "table", "inet", "slxsh")
	restored := false
	for i := 0; i < 20 && !restored; i++ { // poll for at most 2 s
		time.Sleep(100 * time.Millisecond)
		restored = strings.Contains(nftTable(ag.ns), `comment "acl=check dir=in seq=10"`)
	}
	if !restored {
		t.Fatalf("table not restored within 2 s:\n%s", ag.log)
	}
	p.Client.Expect(t, "", ssh, netns.Reset)
	expectShown(t, ag, p.Client, 22, "check", "10", 3, map[string]int{netns.PairClient4: 3})
	open[0].Close()
	admitOneMore(t, p.Client, "", ssh, ag)
}

// TestKernelSessionsLowered: limit lowered 5 -> 2 with 5 open. keep: all go
// on and nothing is admitted until C is below 2. reset: exactly the 3
// newest get ECONNRESET within 2 s, the 2 oldest keep exchanging data, a
// new one is refused.
func TestKernelSessionsLowered(t *testing.T) {
	for _, policy := range []string{"keep", "reset"} {
		t.Run(policy, func(t *testing.T) {
			p, ag := sessionsSetup(t, policy, fmt.Sprintf(slxEntry, 5))
			var conns []net.Conn
			for range 5 {
				conns = append(conns, p.Client.Expect(t, "", ssh, netns.Connected))
				time.Sleep(10 * time.Millisecond) // distinct ages
			}
			p.Client.Expect(t, "", ssh, netns.Reset)
			expectShown(t, ag, p.Client, 22, "check", "10", 5, map[string]int{netns.PairClient4: 5})

			setEntry(ag, fmt.Sprintf(slxEntry, 2))
			if policy == "reset" {
				for i, c := range conns[2:] {
					expectConnReset(t, c, fmt.Sprintf("session %d of 5 (oldest first)", i+3))
				}
			}
			for i, c := range conns {
				if policy == "keep" || i < 2 {
					if err := netns.Echo(c); err != nil {
						t.Fatalf("session %d of 5 (oldest first): %v, want it kept", i+1, err)
					}
				}
			}
			p.Client.Expect(t, "", ssh, netns.Reset)
			if policy == "reset" {
				expectShown(t, ag, p.Client, 22, "check", "10", 2, map[string]int{netns.PairClient4: 2})
				return
			}
			expectShown(t, ag, p.Client, 22, "check", "10", 2, map[string]int{netns.PairClient4: 5})
			for _, c := range conns[2:] {
				c.Close()
			}
			expectShown(t, ag, p.Client, 22, "check", "10", 2, map[string]int{netns.PairClient4: 2})
			time.Sleep(1500 * time.Millisecond) // past a refresh: still at 2 of 2
			p.Client.Expect(t, "", ssh, netns.Reset)
			conns[1].Close()
			admitOneMore(t, p.Client, "", ssh, ag)
			expectShown(t, ag, p.Client, 22, "check", "10", 2, map[string]int{netns.PairClient4: 2})
		})
	}
}

// TestKernelSessionsPermitTurnedDeny: `reset` ends C's open sessions when
// their permit becomes a deny, `keep` leaves them; new ones are refused
// either way. Port 80 (seq 20) is not disturbed.
func TestKernelSessionsPermitTurnedDeny(t *testing.T) {
	entry := fmt.Sprintf("seq 10 %%s tcp host %s host %s eq 22", netns.PairClient4, netns.PairServer4)
	for _, policy := range []string{"keep", "reset"} {
		t.Run(policy, func(t *testing.T) {
			p, ag := sessionsSetup(t, policy, fmt.Sprintf(entry, "permit"))
			web := net.JoinHostPort(netns.PairServer4, "80")
			p.Server.Listen(t, web)
			conns := []net.Conn{p.Client.Expect(t, "", ssh, netns.Connected), p.Client.Expect(t, "", ssh, netns.Connected)}
			other := p.Client.Expect(t, "", web, netns.Connected)

			setEntry(ag, fmt.Sprintf(entry, "deny"))
			for i, c := range conns {
				if policy == "reset" {
					expectConnReset(t, c, fmt.Sprintf("session %d", i+1))
				} else if err := netns.Echo(c); err != nil {
					t.Errorf("session %d under keep: %v", i+1, err)
				}
			}
			if err := netns.Echo(other); err != nil {
				t.Errorf("session on port 80 (still permitted): %v", err)
			}
			p.Client.Expect(t, "", ssh, netns.Reset)
			want := map[string]int{}
			if policy == "keep" {
				want[netns.PairClient4] = 2
			}
			if got := heldSessions(t, p.Client, 22); !maps.Equal(got, want) {
				t.Errorf("client holds %v on port 22, want %v", got, want)
			}
		})
	}
}

// TestKernelSessionsRouted: the agent on the router between client and
// server (ACL on rc, in). Under `reset`, lowering the limit 3 -> 1 resets
// the 2 newest sessions on their next packet, and turning the permit into
// a deny resets the last one; `show access-list sessions` follows.
func TestKernelSessionsRouted(t *testing.T) {
	r := netns.NewRouted(t)
	addr := net.JoinHostPort(netns.RoutedServer4, "22")
	r.Server.Listen(t, addr)
	ag := newAgent(t, r.Router, "rc")
	ag.start()
	entry := fmt.Sprintf("seq 10 %%s tcp host %s host %s eq 22%%s", netns.RoutedClient4, netns.RoutedServer4)
	ag.mustShell("configure terminal\nconnlimit existing-sessions reset\nip access-list extended edge\n" +
		fmt.Sprintf(entry, "permit", " connlimit 3") + "\nseq 20 permit ip any any\nexit\ninterface management 0\nip access-group edge in\nend\n")
	var conns []net.Conn
	for range 3 {
		conns = append(conns, r.Client.Expect(t, "", addr, netns.Connected))
		time.Sleep(10 * time.Millisecond) // distinct ages
	}
	r.Client.Expect(t, "", addr, netns.Reset)
	expectShown(t, ag, r.Client, 22, "edge", "10", 3, map[string]int{netns.RoutedClient4: 3})

	ag.mustShell("configure terminal\nip access-list extended edge\nno seq 10\n" + fmt.Sprintf(entry, "permit", " connlimit 1") + "\nend\n")
	expectConnReset(t, conns[2], "newest session")
	expectConnReset(t, conns[1], "second newest session")
	if err := netns.Echo(conns[0]); err != nil {
		t.Fatalf("oldest session: %v, want it kept", err)
	}
	r.Client.Expect(t, "", addr, netns.Reset)
	expectShown(t, ag, r.Client, 22, "edge", "10", 1, map[string]int{netns.RoutedClient4: 1})

	ag.mustShell("configure terminal\nip access-list extended edge\nno seq 10\n" + fmt.Sprintf(entry, "deny", "") + "\nend\n")
	expectConnReset(t, conns[0], "last session after deny")
	if got := heldSessions(t, r.Client, 22); len(got) != 0 {
		t.Errorf("client still holds %v", got)
	}
}

// TestKernelClearSessions: `clear access-list sessions ip NAME [seq N]
// [source ADDR]` through slxsh resets exactly the selected sessions; a
// missing ACL is an error that changes nothing.
func TestKernelClearSessions(t *testing.T) {
	const other = "10.0.0.7"
	p, ag := sessionsSetup(t, "keep", fmt.Sprintf("seq 10 permit tcp any host %s eq 22 connlimit 3", netns.PairServer4))
	p.Client.AddAddr(t, "c0", other+"/24")
	web := net.JoinHostPort(netns.PairServer4, "80")
	p.Server.Listen(t, web)
	mine := []net.Conn{p.Client.Expect(t, netns.PairClient4, ssh, netns.Connected), p.Client.Expect(t, netns.PairClient4, ssh, netns.Connected)}
	theirs := []net.Conn{p.Client.Expect(t, other, ssh, netns.Connected), p.Client.Expect(t, other, ssh, netns.Connected), p.Client.Expect(t, other, ssh, netns.Connected)}
	unlimited := p.Client.Expect(t, netns.PairClient4, web, netns.Connected)
	p.Client.Expect(t, other, ssh, netns.Reset)
	expectShown(t, ag, p.Client, 22, "check", "10", 3, map[string]int{netns.PairClient4: 2, other: 3})

	if r := ag.shell("", "-c", "clear access-list sessions ip nope"); r.code == 0 || !strings.Contains(r.out+r.err, "% Error") {
		t.Errorf("clear of a missing ACL: %v", r)
	}
	expectShown(t, ag, p.Client, 22, "check", "10", 3, map[string]int{netns.PairClient4: 2, other: 3})

	ag.mustShell("", "-c", "clear access-list sessions ip check seq 10 source "+other)
	for i, c := range theirs {
		expectConnReset(t, c, fmt.Sprintf("session %d of %s", i+1, other))
	}
	for i, c := range append(slices.Clone(mine), unlimited) {
		if err := netns.Echo(c); err != nil {
			t.Fatalf("session %d of %s after clearing %s: %v", i+1, netns.PairClient4, other, err)
		}
	}
	expectShown(t, ag, p.Client, 22, "check", "10", 3, map[string]int{netns.PairClient4: 2})
	p.Client.Expect(t, other, ssh, netns.Connected) // its budget is back

	ag.mustShell("", "-c", "clear access-list sessions ip check seq 10")
	for i, c := range mine {
		expectConnReset(t, c, fmt.Sprintf("session %d of %s", i+1, netns.PairClient4))
	}
	if err := netns.Echo(unlimited); err != nil {
		t.Fatalf("session under seq 20 after clearing seq 10: %v", err)
	}
	expectShown(t, ag, p.Client, 22, "check", "10", 3, map[string]int{})

	ag.mustShell("", "-c", "clear access-list sessions ip check")
	expectConnReset(t, unlimited, "session under seq 20")
}

// TestKernelSessionsDenyLimitMarker: a limited deny refuses the Nth
// connection, so a key with N-1 open is at its limit: the shell shows the
// agent's marker, not Sessions >= Limit. Also `show access-list sessions ip
// NAME seq N` shows only entry N.
func TestKernelSessionsDenyLimitMarker(t *testing.T) {
	p, ag := sessionsSetup(t, "keep", fmt.Sprintf("seq 10 deny tcp host %s host %s eq 22 connlimit 3", netns.PairClient4, netns.PairServer4))
	ag.mustShell(fmt.Sprintf("configure terminal\nip access-list extended check\nseq 15 permit tcp any host %s eq 22 connlimit 5\nend\n", netns.PairServer4))
	expectN(t, p.Client, ssh, 2, netns.Connected) // passed on by seq 10, admitted by seq 15
	p.Client.Expect(t, "", ssh, netns.Reset)      // the 3rd, this one included
	for _, tc := range []struct {
		filter string
		want   map[string]string
	}{
		{"", map[string]string{"10 " + netns.PairClient4: "2/3 at limit", "15 " + netns.PairClient4: "2/5"}},
		{" seq 10", map[string]string{"10 " + netns.PairClient4: "2/3 at limit"}},
		{" seq 15", map[string]string{"15 " + netns.PairClient4: "2/5"}},
	} {
		if got := shownSessions(t, ag, "check"+tc.filter); !maps.Equal(got, tc.want) {
			t.Errorf("show access-list sessions ip check%s = %v, want %v", tc.filter, got, tc.want)
		}
	}
	if got := heldSessions(t, p.Client, 22); got[netns.PairClient4] != 2 {
		t.Errorf("the client holds %v, want 2 from %s", got, netns.PairClient4)
	}
	if show := ag.mustShell("", "-c", "show access-list ip check"); !strings.Contains(show, ", 1 at limit)") {
		t.Errorf("show access-list does not count the key at its limit:\n%s", show)
	}
}
