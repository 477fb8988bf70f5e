package nflog_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/netns"
	"github.com/slxsh/slxsh/internal/nflog"
)

// TestKernelReadsLoggedSYN: a `log group` rule inside a namespace reaches
// a reader bound in that namespace, with its prefix, addresses and ports
// (the kernel log would stay silent there).
func TestKernelReadsLoggedSYN(t *testing.T) {
	p := netns.NewPair(t)
	p.Server.MustExec(t, "nft", `add table inet t; add chain inet t in { type filter hook input priority 0; }; add rule inet t in tcp dport 25 log prefix "connlimit acl=mail dir=in seq=10 " group 7 reject with tcp reset`)
	r, err := nflog.Listen(nflog.Config{Group: 7, NetNS: p.Server.Fd()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r2, err := nflog.Listen(nflog.Config{Group: 7, NetNS: p.Server.Fd()}); err == nil {
		r2.Close()
		t.Fatal("a second listener bound the same group")
	}
	// The instance took our settings: group, peer, queue length, copy
	// mode (packet), copy range, flush timeout (1/100 s), use.
	inst := strings.Fields(p.Server.MustExec(t, "cat", "/proc/net/netfilter/nfnetlink_log"))
	if len(inst) != 7 || inst[0] != "7" || inst[3] != "2" || inst[4] != "128" || inst[5] != "5" {
		t.Fatalf("nfnetlink_log instance %q, want group 7, copy mode 2, range 128, flush timeout 5", inst)
	}
	p.Client.Expect(t, "", net.JoinHostPort(netns.PairServer4, "25"), netns.Reset)
	got := make(chan nflog.Event, 1)
	go func() {
		if ev, err := r.Read(); err == nil {
			got <- ev
		}
	}()
	select {
	case ev := <-got:
		if ev.Prefix != "connlimit acl=mail dir=in seq=10" || ev.Src.String() != netns.PairClient4 ||
			ev.Dst.String() != netns.PairServer4 || ev.Proto != 6 || ev.DPort != 25 || ev.SPort == 0 {
			t.Fatalf("event %+v", ev)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no event within 2 s")
	}
}

func TestParsePacketIPv6UDP(t *testing.T) {
	p := make([]byte, 48)
	p[0] = 0x60
	p[6] = 17
	p[8], p[23] = 0xfd, 1
	p[24], p[39] = 0xfd, 2
	p[40], p[41], p[42], p[43] = 0x30, 0x39, 0, 53
	var ev nflog.Event
	nflog.ParsePacket(p, &ev)
	if ev.Src.String() != "fd00::1" || ev.Dst.String() != "fd00::2" || ev.Proto != 17 || ev.SPort != 12345 || ev.DPort != 53 {
		t.Fatalf("got %+v", ev)
	}
}
