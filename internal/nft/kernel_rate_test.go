package nft_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/netns"
)

// tally dials remote n times from local and counts the connections that
// got through and those reset; connected ones stay open until the end of
// the test.
func tally(t *testing.T, c *netns.NS, local, remote string, n int) (connected, reset int) {
	t.Helper()
	for range n {
		conn, got, err := c.Dial(local, remote, netns.DialTimeout)
		switch got {
		case netns.Connected:
			connected++
			t.Cleanup(func() { conn.Close() })
		case netns.Reset:
			reset++
		default:
			t.Fatalf("dial %s: %v (%v)", remote, got, err)
		}
	}
	return connected, reset
}

// A rate without burst is a fixed window of N connections per key: nft's
// default burst of 5 no longer applies, and the window does not refill.
func TestKernelRateWindow(t *testing.T) {
	t.Parallel() // it waits a minute, in namespaces of its own
	p := netns.NewPair(t)
	p.Client.AddAddr(t, "c0", extraClient+"/24")
	server(t, p.Server, netns.PairServer4, 22, 23)
	applyConfig(t, p.Server, `ip access-list extended check
 seq 10 permit tcp any any eq 22 rate 1 per minute
 seq 20 permit tcp any any eq 23 rate 10 per minute total
 seq 30 permit ip any any
`+onS0In)
	ssh, telnet := hostPort(netns.PairServer4, 22), hostPort(netns.PairServer4, 23)
	start := time.Now()
	if c, r := tally(t, p.Client, netns.PairClient4, ssh, 2); c != 1 || r != 1 {
		t.Errorf("rate 1 per minute: %d admitted, %d refused; want 1, 1", c, r)
	}
	// Per source: another source has its own window.
	p.Client.Expect(t, extraClient, ssh, netns.Connected)
	if c, r := tally(t, p.Client, netns.PairClient4, telnet, 12); c != 10 || r != 2 {
		t.Errorf("rate 10 per minute total, burst of 12: %d admitted, %d refused; want 10, 2", c, r)
	}
	// None more within the minute, from any source (total), however
	// slowly: a token bucket would have refilled 9 by now.
	time.Sleep(time.Until(start.Add(55 * time.Second)))
	p.Client.Expect(t, extraClient, telnet, netns.Reset)
	p.Client.Expect(t, netns.PairClient4, ssh, netns.Reset)
	// The minute from the first connection is over: new windows.
	time.Sleep(time.Until(start.Add(61 * time.Second)))
	p.Client.Expect(t, extraClient, telnet, netns.Connected)
	p.Client.Expect(t, netns.PairClient4, ssh, netns.Connected)
}

// The window ends one period after the key's first connection: then the
// key has N connections again.
func TestKernelRateWindowEnds(t *testing.T) {
	p := netns.NewPair(t)
	server(t, p.Server, netns.PairServer4, 22)
	applyConfig(t, p.Server, `ip access-list extended check
 seq 10 permit tcp any any eq 22 rate 2 per second
 seq 20 permit ip any any
`+onS0In)
	ssh := hostPort(netns.PairServer4, 22)
	if c, r := tally(t, p.Client, netns.PairClient4, ssh, 3); c != 2 || r != 1 {
		t.Fatalf("rate 2 per second: %d admitted, %d refused; want 2, 1", c, r)
	}
	time.Sleep(1200 * time.Millisecond)
	if c, r := tally(t, p.Client, netns.PairClient4, ssh, 3); c != 2 || r != 1 {
		t.Errorf("next window: %d admitted, %d refused; want 2, 1", c, r)
	}
}

// With burst, rate is nft's token bucket: `rate 2 per second burst 4`
// admits 4 of 8 in a burst.
func TestKernelRateBurst(t *testing.T) {
	p := netns.NewPair(t)
	server(t, p.Server, netns.PairServer4, 22, 23)
	applyConfig(t, p.Server, `ip access-list extended check
 seq 10 permit tcp any any eq 22 rate 2 per second burst 4
 seq 20 permit tcp any any eq 23 rate 2 per second burst 4 total
 seq 30 permit ip any any
`+onS0In)
	for _, port := range []int{22, 23} {
		if c, r := tally(t, p.Client, netns.PairClient4, hostPort(netns.PairServer4, port), 8); c != 4 || r != 4 {
			t.Errorf("port %d, rate 2 per second burst 4: %d of 8 admitted (%d refused); want 4", port, c, r)
		}
	}
}

// With connlimit and rate on one entry, connections that connlimit refuses
// spend none of the rate, and one that the rate refuses holds no slot of
// the connlimit: the source gets exactly its 3 admissions in the window,
// however often it was refused at its connlimit.
func TestKernelConnlimitSparesRate(t *testing.T) {
	p := netns.NewPair(t)
	server(t, p.Server, netns.PairServer4, 22)
	applyConfig(t, p.Server, `ip access-list extended check
 seq 10 permit tcp any any eq 22 connlimit 1 rate 3 per minute
 seq 20 permit ip any any
`+onS0In)
	ssh := hostPort(netns.PairServer4, 22)
	for i := range 3 {
		c := p.Client.Expect(t, netns.PairClient4, ssh, netns.Connected)
		for range 3 { // at its connlimit
			p.Client.Expect(t, netns.PairClient4, ssh, netns.Reset)
		}
		c.Close()
		waitClosed(t, p.Server, 22)
		if i == 2 {
			// 3 admitted: the rate refuses, though the connlimit would not.
			p.Client.Expect(t, netns.PairClient4, ssh, netns.Reset)
		}
	}
}

// waitClosed waits (at most 3 s) until every tracked TCP flow to port is
// closed (TIME_WAIT or CLOSE): ct count counts it no more.
func waitClosed(t *testing.T, ns *netns.NS, port int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		out, _ := ns.Exec("conntrack", "-L", "-p", "tcp", "--dport", strconv.Itoa(port))
		open := 0
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "tcp") && !strings.Contains(l, " TIME_WAIT ") && !strings.Contains(l, " CLOSE ") {
				open++
			}
		}
		if open == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("flows to port %d still open after 3 s:\n%s", port, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
