package netns

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestKernelPairConnects(t *testing.T) {
	p := NewPair(t)
	s4 := p.Server.Listen(t, net.JoinHostPort(PairServer4, "22"))
	s6 := p.Server.Listen(t, net.JoinHostPort(PairServer6, "22"))
	p.Client.Expect(t, "", s4.Addr, Connected)
	p.Client.Expect(t, PairClient4, s4.Addr, Connected)
	p.Client.Expect(t, "", s6.Addr, Connected)
	// Nothing listens on 23: the server's kernel answers with a reset.
	p.Client.Expect(t, "", net.JoinHostPort(PairServer4, "23"), Reset)
	if s4.Accepted() != 2 {
		t.Errorf("v4 server accepted %d connections, want 2", s4.Accepted())
	}
	// The namespaces are separate: the server address is not local to the client.
	out := p.Client.MustExec(t, "ip", "-o", "addr")
	if strings.Contains(out, PairServer4) {
		t.Errorf("client namespace has the server address:\n%s", out)
	}
}

func TestKernelDropTimesOut(t *testing.T) {
	p := NewPair(t)
	s := p.Server.Listen(t, net.JoinHostPort(PairServer4, "80"))
	p.Server.MustExec(t, "nft", "add table inet t; add chain inet t in { type filter hook input priority 0; }; add rule inet t in tcp dport 80 drop")
	p.Client.Expect(t, "", s.Addr, TimedOut)
	p.Client.MustExec(t, "nft", "add table inet t; add chain inet t out { type filter hook output priority 0; }; add rule inet t out tcp dport 81 drop")
	if _, got, err := p.Client.Dial("", net.JoinHostPort(PairServer4, "81"), DialTimeout); got != TimedOut {
		t.Errorf("dial dropped in own output: got %v (%v), want timed out (a SYN dropped in output is retransmitted, not reported)", got, err)
	}
}

func TestKernelRouted(t *testing.T) {
	r := NewRouted(t)
	s4 := r.Server.Listen(t, net.JoinHostPort(RoutedServer4, "22"))
	s6 := r.Server.Listen(t, net.JoinHostPort(RoutedServer6, "22"))
	r.Client.Expect(t, "", s4.Addr, Connected)
	r.Client.Expect(t, "", s6.Addr, Connected)
}

func TestKernelNFTConnInNamespace(t *testing.T) {
	n := New(t)
	n.MustExec(t, "nft", "add table inet probe")
	c := n.NFT(t)
	tabs, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	if len(tabs) != 1 || tabs[0].Name != "probe" {
		t.Errorf("tables in namespace: %v, want only probe", tabs)
	}
}

func TestKernelUDPExchange(t *testing.T) {
	p := NewPair(t)
	addr := p.Server.ListenUDP(t, net.JoinHostPort(PairServer4, "53"))
	if got, err := p.Client.ExchangeUDP("", addr.String(), DialTimeout); got != Connected {
		t.Errorf("udp echo: %v (%v)", got, err)
	}
	// No server on 54: ICMP port unreachable.
	if got, err := p.Client.ExchangeUDP(PairClient4, net.JoinHostPort(PairServer4, "54"), DialTimeout); got != Reset {
		t.Errorf("udp to a closed port: %v (%v), want reset", got, err)
	}
	p.Server.MustExec(t, "nft", "add table inet t; add chain inet t in { type filter hook input priority 0; }; add rule inet t in udp dport 53 reject with icmpx admin-prohibited")
	if got, err := p.Client.ExchangeUDP("", addr.String(), DialTimeout); got != Unreachable {
		t.Errorf("udp rejected admin-prohibited: %v (%v), want unreachable", got, err)
	}
	p.Server.MustExec(t, "nft", "insert rule inet t in udp dport 53 drop")
	if got, err := p.Client.ExchangeUDP("", addr.String(), DialTimeout); got != TimedOut {
		t.Errorf("udp dropped: %v (%v), want timed out", got, err)
	}
}

func TestKernelOrphansRemoved(t *testing.T) {
	RequireRoot(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	orphan := fmt.Sprintf("%s%d-orphan", prefix, dead.Process.Pid)
	alive := fmt.Sprintf("%s%d-alive", prefix, os.Getpid())
	for _, name := range []string{orphan, alive} {
		if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v: %s", name, err, out)
		}
	}
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", orphan).Run()
		exec.Command("ip", "netns", "del", alive).Run()
	})
	New(t)
	out, _ := exec.Command("ip", "netns", "list").CombinedOutput()
	if strings.Contains(string(out), orphan) {
		t.Errorf("namespace of a dead process %s not removed:\n%s", orphan, out)
	}
	if !strings.Contains(string(out), alive) {
		t.Errorf("namespace of a live process %s removed:\n%s", alive, out)
	}
}
