package main

// Issue 10's acceptance for `refuse message` through the real binaries: a
// client over its connlimit reads the line and EOF, the admitted ones go
// on, the real service never sees the refused one; routed through a
// router namespace; and with the agent stopped the refusal is a reset.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/netns"
)

const smtpLine = "421 example.com unavailable"

// mailConfig applies, on management 0 in, the list mail (mail6 for an
// IPv6 server) of `seq 10 permit tcp any host SERVER eq 25 OPTIONS` and
// `seq 20` permitting everything else.
func mailConfig(server, options string) string {
	fam, name, proto := "ip", "mail", "ip"
	if strings.Contains(server, ":") {
		fam, name, proto = "ipv6", "mail6", "ipv6"
	}
	return fmt.Sprintf(`configure terminal
%[1]s access-list extended %[2]s
seq 10 permit tcp any host %[4]s eq 25 %[5]s
seq 20 permit %[3]s any any
exit
interface management 0
%[1]s access-group %[2]s in
end
`, fam, name, proto, server, options)
}

// messageConfig applies `seq 10 permit tcp any host S eq 25 connlimit 2
// refuse message ...` on management 0, in.
func messageConfig(server string) string {
	return mailConfig(server, fmt.Sprintf(`connlimit 2 refuse message "%s"`, smtpLine))
}

// readRefusal dials addr from ns and expects exactly the line with CRLF
// and then EOF, all within 200 ms of the dial.
func readRefusal(t *testing.T, ns *netns.NS, addr string) {
	t.Helper()
	start := time.Now()
	c, got, err := ns.Dial("", addr, netns.DialTimeout)
	if got != netns.Connected {
		t.Fatalf("dial %s over the limit: %v (%v), want the refuse message", addr, got, err)
	}
	defer c.Close()
	c.SetReadDeadline(start.Add(200 * time.Millisecond))
	data, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("over the limit: read %q, then %v; want the line and EOF within 200 ms", data, err)
	}
	if string(data) != smtpLine+"\r\n" {
		t.Fatalf("over the limit: read %q, want %q", data, smtpLine+"\r\n")
	}
}

// messageAcceptance runs the acceptance steps against a service at addr
// seen by the agent ag: 2 admitted, the 3rd (and 4th) answered by the
// responder, the 2 still echo, sessions 2/2, the service saw 2.
func messageAcceptance(t *testing.T, client *netns.NS, srv *netns.Server, addr, src string, ag *agentProc) {
	t.Helper()
	a, b := admitTwo(t, client, addr)
	readRefusal(t, client, addr)
	readRefusal(t, client, addr)
	for i, c := range []net.Conn{a, b} {
		if err := netns.Echo(c); err != nil {
			t.Fatalf("admitted session %d after the refusals: %v", i+1, err)
		}
	}
	expectShown(t, ag, client, 25, "mail", "10", 2, map[string]int{src: 2})
	if n := srv.Accepted(); n != 2 {
		t.Fatalf("the real service accepted %d connections, want 2", n)
	}
	// The answered refusals hold no slot: once an admitted session ends,
	// the next connection is admitted.
	a.Close()
	for range 20 { // the kernel forgets a closed flow within a second or so
		c, got, _ := client.Dial("", addr, netns.DialTimeout)
		if got == netns.Connected && netns.Echo(c) == nil {
			c.Close()
			return
		}
		if c != nil {
			c.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no connection admitted within 2 s after an admitted session ended")
}

// messageSetup is a Pair with a service on the server's port 25 and an
// agent in the server namespace running messageConfig on s0.
func messageSetup(t *testing.T) (p *netns.Pair, srv *netns.Server, addr string, ag *agentProc) {
	t.Helper()
	p = netns.NewPair(t)
	addr = net.JoinHostPort(netns.PairServer4, "25")
	srv = p.Server.Listen(t, addr)
	ag = newAgent(t, p.Server, "s0")
	ag.start()
	ag.mustShell(messageConfig(netns.PairServer4))
	return p, srv, addr, ag
}

// admitTwo opens the two sessions that the limit admits.
func admitTwo(t *testing.T, client *netns.NS, addr string) (a, b net.Conn) {
	t.Helper()
	a = client.Expect(t, "", addr, netns.Connected)
	b = client.Expect(t, "", addr, netns.Connected)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestKernelRefuseMessage(t *testing.T) {
	p, srv, addr, ag := messageSetup(t)
	messageAcceptance(t, p.Client, srv, addr, netns.PairClient4, ag)
	if !strings.Contains(ag.mustShell("", "-c", "show nftables"), "redirect to :4421") {
		t.Fatalf("show nftables has no redirect to the responder")
	}
	// The responder's port itself, dialled directly (no refusal
	// redirected it; the list permits it): reset, no slot taken.
	p.Client.Expect(t, "", net.JoinHostPort(netns.PairServer4, "4421"), netns.Reset)
}

func TestKernelRefuseMessageRouted(t *testing.T) {
	r := netns.NewRouted(t)
	addr := net.JoinHostPort(netns.RoutedServer4, "25")
	srv := r.Server.Listen(t, addr)
	ag := newAgent(t, r.Router, "rc", "--metrics", "127.0.0.1:9469")
	ag.start()
	ag.mustShell(messageConfig(netns.RoutedServer4))
	messageAcceptance(t, r.Client, srv, addr, netns.RoutedClient4, ag)
	// Two refusals, or three if the re-admission above was answered once
	// before the ended session was forgotten.
	body := string(scrapeMetrics(t, ag, "127.0.0.1:9469"))
	m := regexp.MustCompile(`(?m)^slxsh_refuse_messages_total\{outcome="answered"\} (\d+)$`).FindStringSubmatch(body)
	r10 := regexp.MustCompile(`(?m)^slxsh_acl_refusals_total\{acl="mail",direction="in",family="ip",seq="10"\} (\d+)$`).FindStringSubmatch(body)
	if m == nil || r10 == nil || m[1] != r10[1] || (m[1] != "2" && m[1] != "3") || !strings.Contains(body, `slxsh_refuse_messages_total{outcome="shed"} 0`) {
		t.Errorf("metrics: answered %v, refused %v, want equal, 2 or 3, none shed:\n%s", m, r10, body)
	}
}

// TestKernelRefuseMessageAgentDown: with the agent stopped, the rules stay
// and the responder is gone: the 3rd connection is reset, never admitted.
func TestKernelRefuseMessageAgentDown(t *testing.T) {
	p, srv, addr, ag := messageSetup(t)
	admitTwo(t, p.Client, addr)
	ag.stop()
	if !strings.Contains(nftTable(p.Server), "redirect to :4421") {
		t.Fatalf("the table lost its redirect when the agent stopped:\n%s", nftTable(p.Server))
	}
	for range 3 {
		c, got, err := p.Client.Dial("", addr, netns.DialTimeout)
		if got == netns.Connected {
			// A reset can only come after the handshake if something
			// accepted; anything read means the connection was served.
			c.SetReadDeadline(time.Now().Add(time.Second))
			data, rerr := io.ReadAll(c)
			c.Close()
			t.Fatalf("agent down: the 3rd connected (read %q, %v), want a reset", data, rerr)
		}
		if got != netns.Reset || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("agent down: dial got %v (%v), want a reset", got, err)
		}
	}
	if n := srv.Accepted(); n != 2 {
		t.Fatalf("the real service accepted %d connections, want 2", n)
	}
}

// expectReset dials addr from ns n times and expects a reset each time.
func expectReset(t *testing.T, ns *netns.NS, addr, when string, n int) {
	t.Helper()
	for range n {
		c, got, err := ns.Dial("", addr, netns.DialTimeout)
		if got == netns.Connected {
			c.SetReadDeadline(time.Now().Add(time.Second))
			data, rerr := io.ReadAll(c)
			c.Close()
			t.Fatalf("%s: the refused connection connected (read %q, %v), want a reset", when, data, rerr)
		}
		if got != netns.Reset || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("%s: dial got %v (%v), want a reset", when, got, err)
		}
	}
}

// TestKernelRefuseMessagePortTaken: another process that listens on the
// message port (while the agent is down, then when it starts) never gets a
// refused connection: the kernel resets those that reach a listener
// without the responder's socket mark. The agent starts all the same with
// its configuration (before, it came up with none and the limits failed
// open), says why in show logging and in a change's warnings, and answers
// with the line once the port is free.
func TestKernelRefuseMessagePortTaken(t *testing.T) {
	p, srv, addr, ag := messageSetup(t)
	admitTwo(t, p.Client, addr)
	ag.stop()
	other := p.Server.Listen(t, "0.0.0.0:4421") // no socket mark, as any process but the agent
	expectReset(t, p.Client, addr, "agent down, port taken", 2)

	ag.start()
	if run := ag.running(); !strings.Contains(run, "refuse message") {
		t.Fatalf("agent started with the port taken: running-config %q", run)
	}
	expectReset(t, p.Client, addr, "agent up, port taken", 2)
	if n := other.Accepted(); n != 0 {
		t.Fatalf("the process on the message port accepted %d refused connections", n)
	}
	if n := srv.Accepted(); n != 2 {
		t.Fatalf("the real service accepted %d connections, want 2", n)
	}
	wantWarn := "% Warning: refused clients of some refuse message ports are reset, not answered"
	if log := ag.mustShell("", "-c", "show logging"); !strings.Contains(log, wantWarn) {
		t.Errorf("show logging does not say the port is not served:\n%s", log)
	}
	if r := ag.shell("", "-c", "configure terminal; hostname taken"); !strings.Contains(r.out+r.err, wantWarn) {
		t.Errorf("a change is not warned: %v", r)
	}

	other.Close()
	deadline := time.Now().Add(5 * time.Second)
	for strings.Contains(ag.mustShell("", "-c", "show logging"), wantWarn) {
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not open the freed port within 5 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	readRefusal(t, p.Client, addr)
}

// TestKernelRefuseMessageIPv6: the same through an IPv6 ACL (the
// responder listens on both families).
func TestKernelRefuseMessageIPv6(t *testing.T) {
	p := netns.NewPair(t)
	addr := net.JoinHostPort(netns.PairServer6, "25")
	srv := p.Server.Listen(t, addr)
	ag := newAgent(t, p.Server, "s0")
	ag.start()
	ag.mustShell(mailConfig(netns.PairServer6, fmt.Sprintf(`connlimit 1 refuse message "%s"`, smtpLine)))
	c := p.Client.Expect(t, "", addr, netns.Connected)
	defer c.Close()
	readRefusal(t, p.Client, addr)
	if err := netns.Echo(c); err != nil {
		t.Fatalf("admitted session: %v", err)
	}
	if n := srv.Accepted(); n != 1 {
		t.Fatalf("the real service accepted %d connections, want 1", n)
	}
}

// TestKernelRefuseMessageBlocked: a source locked out by an entry with
// block-for and a refuse message reads the message for the lockout, on
// every TCP port of the ACL, and the real services never see it.
func TestKernelRefuseMessageBlocked(t *testing.T) {
	p := netns.NewPair(t)
	addr := net.JoinHostPort(netns.PairServer4, "25")
	other := net.JoinHostPort(netns.PairServer4, "26")
	srv, srvOther := p.Server.Listen(t, addr), p.Server.Listen(t, other)
	ag := newAgent(t, p.Server, "s0")
	ag.start()
	ag.mustShell(mailConfig(netns.PairServer4, fmt.Sprintf(`connlimit 1 block-for 60 refuse message "%s"`, smtpLine)))
	c := p.Client.Expect(t, "", addr, netns.Connected)
	defer c.Close()
	o := p.Client.Expect(t, "", other, netns.Connected) // not over any limit yet
	o.Close()
	readRefusal(t, p.Client, addr) // over: blocked from now on
	readRefusal(t, p.Client, other)
	if err := netns.Echo(c); err != nil {
		t.Fatalf("the session open before the block: %v", err)
	}
	if a, b := srv.Accepted(), srvOther.Accepted(); a != 1 || b != 1 {
		t.Fatalf("the services accepted %d and %d connections, want 1 and 1", a, b)
	}
}
