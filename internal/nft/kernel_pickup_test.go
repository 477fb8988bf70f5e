package nft_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/netns"
	"github.com/slxsh/slxsh/internal/nft"
)

// TestKernelSegmentsWithoutSYNJudged: a TCP segment that no SYN opened
// (conntrack picks it up as `ct state new`) passes unjudged only in the
// table's grace; after it, the ACL judges it as a connection, so a
// hard-drop entry drops forged ACK and data segments toward the host
// it protects, and a permit entry admits them without counting them: a
// `connlimit 1 total` filled with forged segments toward an address that
// never answers still admits its one real connection, and then refuses.
func TestKernelSegmentsWithoutSYNJudged(t *testing.T) {
	r := netns.NewRouted(t)
	server(t, r.Server, netns.RoutedServer4, 9001)
	a, _ := applyConfig(t, r.Router, `ip access-list extended transit
 seq 10 hard-drop tcp any host 10.2.0.2 eq 9000
 seq 20 permit tcp any 10.2.0.0/24 eq 9001 connlimit 1 total
 seq 30 permit ip any any
interface rc
 ip access-group transit in
`)
	client := netip.MustParseAddr(netns.RoutedClient4)
	protected := netip.AddrPortFrom(netip.MustParseAddr(netns.RoutedServer4), 9000)
	matches, _ := nft.CounterNames(acl.IPv4, "transit", acl.In, 10)
	send := func(n int, to netip.AddrPort, port0 uint16) {
		for i := range n {
			// (A FIN or RST without a connection is invalid to conntrack,
			// never new: the ACL judged those always.)
			flags := []uint8{netns.FlagACK, netns.FlagPSH | netns.FlagACK}[i%2]
			r.Client.SendSegment(t, netip.AddrPortFrom(client, port0+uint16(i)), to, flags)
		}
	}

	// In the grace (the table was just created): let through unjudged.
	send(3, protected, 40000)
	if c := counters(t, a); c[matches].Packets != 0 {
		t.Fatalf("in the grace: hard-drop matched %d segments without SYN, want 0 (adopted unjudged)", c[matches].Packets)
	}

	// After it: judged.
	r.Router.MustExec(t, "nft", "flush", "set", "inet", "slxsh", nft.GraceSet)
	send(9, protected, 41000)
	if c := counters(t, a); c[matches].Packets != 9 {
		t.Fatalf("after the grace: hard-drop matched %d of 9 segments without SYN, want all 9", c[matches].Packets)
	}

	// Forged segments toward an address that never answers (ghosts in
	// conntrack for 300 s) are admitted by the permit but not counted.
	send(3, netip.AddrPortFrom(netip.MustParseAddr("10.2.0.99"), 9001), 42000)

	// A SYN on the tuple of such a flow (the server drops stray ACKs, so
	// the flow has no reply) is refused: it would go on in that flow and
	// skip the limit.
	r.Server.MustExec(t, "nft", "add table inet strays { chain in { type filter hook input priority 0; ct state new tcp flags & (syn|ack) == ack drop; }; }")
	server4 := netip.MustParseAddr(netns.RoutedServer4)
	r.Client.SendSegment(t, netip.AddrPortFrom(client, 43000), netip.AddrPortFrom(server4, 9001), netns.FlagACK)
	var err error
	r.Client.Do(func() error {
		d := net.Dialer{Timeout: netns.DialTimeout, LocalAddr: &net.TCPAddr{IP: client.AsSlice(), Port: 43000}}
		var c net.Conn
		if c, err = d.Dial("tcp", hostPort(netns.RoutedServer4, 9001)); c != nil {
			c.Close()
		}
		return nil
	})
	if got := netns.Classify(err); got != netns.Reset {
		t.Fatalf("a SYN on the tuple of a forged flow: %v (%v), want reset", got, err)
	}

	real := hostPort(netns.RoutedServer4, 9001)
	r.Client.Expect(t, "", real, netns.Connected)
	r.Client.Expect(t, "", real, netns.Reset)
}
