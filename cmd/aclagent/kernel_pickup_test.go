package main

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/netns"
	"github.com/slxsh/slxsh/internal/nft"
)

// TestKernelForgedSegmentsFillNoLimit: on a router, forged ACK and data
// segments (no SYN, a spoofed source) toward an address that never answers
// leave flows that conntrack keeps as ESTABLISHED [UNREPLIED] for 300 s.
// In the table's grace and after it, the agent neither counts them as
// sessions open before the limit nor renews the limit for them: `connlimit
// 2 total` still admits exactly 2 real connections, and show says 2/2.
func TestKernelForgedSegmentsFillNoLimit(t *testing.T) {
	r := netns.NewRouted(t)
	addr := net.JoinHostPort(netns.RoutedServer4, "9001")
	r.Server.Listen(t, addr)
	ag := newAgent(t, r.Router, "rc")
	ag.start()
	ag.mustShell("configure terminal\nip access-list extended edge\n" +
		"seq 10 permit tcp any 10.2.0.0/24 eq 9001 connlimit 2 total\nseq 20 permit ip any any\nexit\n" +
		"interface management 0\nip access-group edge in\nend\n")
	nowhere := netip.MustParseAddrPort("10.2.0.99:9001")
	forge := func(port0 uint16) {
		for i := range 4 {
			src := netip.AddrPortFrom(netip.MustParseAddr("10.1.0.40"), port0+uint16(i))
			r.Client.SendSegment(t, src, nowhere, []uint8{netns.FlagACK, netns.FlagPSH | netns.FlagACK}[i%2])
		}
	}
	for _, phase := range []string{"in the grace", "after the grace"} {
		if phase == "after the grace" {
			r.Router.MustExec(t, "nft", "flush", "set", "inet", "slxsh", nft.GraceSet)
		}
		forge(map[string]uint16{"in the grace": 41000, "after the grace": 42000}[phase])
		if ghosts := r.Router.MustExec(t, "conntrack", "-L", "-p", "tcp", "--dst", "10.2.0.99"); strings.Count(ghosts, "UNREPLIED") < 4 {
			t.Fatalf("%s: conntrack holds no forged flows:\n%s", phase, ghosts)
		}
		time.Sleep(2500 * time.Millisecond) // past the refreshes that adopt sessions picked up mid-stream
		var open []net.Conn
		for range 2 {
			open = append(open, r.Client.Expect(t, "", addr, netns.Connected))
		}
		r.Client.Expect(t, "", addr, netns.Reset)
		if shown := shownSessions(t, ag, "edge"); shown["10 total"] != "2/2 at limit" {
			t.Errorf("%s: shown %v, want 10 total 2/2 at limit", phase, shown)
		}
		for _, c := range open {
			c.Close()
		}
		time.Sleep(300 * time.Millisecond)
	}
	if strings.Contains(ag.log.String(), "mid-stream") {
		t.Errorf("the agent renewed a limit for forged segments:\n%s", ag.log)
	}
	// Set aside as ghosts (GhostMark): the adoption reads them no more.
	if out := r.Router.MustExec(t, "conntrack", "-L", "-p", "tcp", "--dst", "10.2.0.99", "--mark", "0x08000000/0x08000000"); strings.Count(out, "UNREPLIED") < 8 {
		t.Errorf("forged flows not marked as ghosts:\n%s", out)
	}

	// A ghost that gets a reply is a session after all: adopted and
	// counted (the server drops the stray ACK, the client its answer).
	r.Server.MustExec(t, "nft", "add table inet strays { chain in { type filter hook input priority 0; ct state new tcp flags & (syn|ack) == ack drop; }; }")
	r.Client.MustExec(t, "nft", "add table inet strays { chain in { type filter hook input priority 0; tcp dport 44000 drop; }; }")
	client := netip.MustParseAddrPort(netns.RoutedClient4 + ":44000")
	server := netip.MustParseAddrPort(addr)
	r.Client.SendSegment(t, client, server, netns.FlagACK)
	time.Sleep(2500 * time.Millisecond) // marked a ghost
	r.Server.SendSegment(t, server, client, netns.FlagACK)
	time.Sleep(2500 * time.Millisecond) // adopted
	r.Client.Expect(t, "", addr, netns.Connected)
	r.Client.Expect(t, "", addr, netns.Reset)
	if shown := shownSessions(t, ag, "edge"); shown["10 total"] != "2/2 at limit old=1" {
		t.Errorf("an answered ghost: shown %v, want 10 total 2/2 at limit old=1", shown)
	}
}
