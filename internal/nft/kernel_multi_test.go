package nft_test

import (
	"fmt"
	"testing"

	"github.com/slxsh/slxsh/internal/netns"
)

// tcpserverPair is a pair whose client has 1.2.3.1-6 and 1.2.4.1 (in
// 1.2.0.0/16) and whose server listens on 1.2.255.254:25.
func tcpserverPair(t *testing.T) (*netns.Pair, string) {
	p := netns.NewPair(t)
	p.Server.AddAddr(t, "s0", "1.2.255.254/16")
	for i := 1; i <= 6; i++ {
		p.Client.AddAddr(t, "c0", fmt.Sprintf("1.2.3.%d/16", i))
	}
	p.Client.AddAddr(t, "c0", "1.2.4.1/16")
	server(t, p.Server, "1.2.255.254", 25)
	return p, hostPort("1.2.255.254", 25)
}

// tcpserver's MAXCONNIP=1, MAXCONNC=5 on one rule: `connlimit 1 connlimit 5
// per-prefix 24` on 1.2.0.0/16. One IP's second connection is refused, the
// sixth IP of a /24 is refused, another /24 is not affected.
func TestKernelTwoConnlimits(t *testing.T) {
	p, smtp := tcpserverPair(t)
	applyConfig(t, p.Server, `ip access-list extended tcpserver
 seq 10 permit tcp 1.2.0.0/16 any eq 25 connlimit 1 connlimit 5 per-prefix 24
 seq 20 permit ip any any
interface s0
 ip access-group tcpserver in
`)
	p.Client.Expect(t, "1.2.3.1", smtp, netns.Connected)
	p.Client.Expect(t, "1.2.3.1", smtp, netns.Reset) // its second: connlimit 1
	for i := 2; i <= 5; i++ {
		p.Client.Expect(t, fmt.Sprintf("1.2.3.%d", i), smtp, netns.Connected)
	}
	p.Client.Expect(t, "1.2.3.6", smtp, netns.Reset) // sixth IP of 1.2.3.0/24
	p.Client.Expect(t, "1.2.4.1", smtp, netns.Connected)
}

// IPv6 limits at /64, /56 and /48 at once, each refusing in its turn.
func TestKernelThreePrefixLimits(t *testing.T) {
	p := netns.NewPair(t)
	p.Server.AddAddr(t, "s0", "2001:db8::ffff/32")
	steps := []struct {
		addr string
		want netns.Outcome
	}{
		{"2001:db8:0:1::1", netns.Connected},
		{"2001:db8:0:1::2", netns.Reset}, // its /64 holds 1
		{"2001:db8:0:2::1", netns.Connected},
		{"2001:db8:0:3::1", netns.Connected},
		{"2001:db8:0:4::1", netns.Reset}, // 2001:db8::/56 holds 3
		{"2001:db8:0:100::1", netns.Connected},
		{"2001:db8:0:200::1", netns.Reset}, // 2001:db8::/48 holds 4
		{"2001:db8:1::1", netns.Connected}, // another /48
	}
	for _, s := range steps {
		p.Client.AddAddr(t, "c0", s.addr+"/32")
	}
	server(t, p.Server, "2001:db8::ffff", 443)
	https := hostPort("2001:db8::ffff", 443)
	applyConfig(t, p.Server, `ipv6 access-list extended six
 seq 10 permit tcp any any eq 443 connlimit 1 per-prefix 64 connlimit 3 per-prefix 56 connlimit 4 per-prefix 48
 seq 20 permit ipv6 any any
interface s0
 ipv6 access-group six in
`)
	for _, s := range steps {
		p.Client.Expect(t, s.addr, https, s.want)
	}
}
