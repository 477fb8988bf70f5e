package nft_test

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/netns"
	"github.com/slxsh/slxsh/internal/nft"
)

// TestKernelWatchElements: the sets of our table whose elements another
// process deletes or adds are told (a flush, a deleted element, an added
// one), those of another table and the Applier's own element writes are
// not, and a connection's own add (the packet path) is not either.
func TestKernelWatchElements(t *testing.T) {
	p := netns.NewPair(t)
	server(t, p.Server, netns.PairServer4, 22)
	a, _ := applyConfig(t, p.Server, `ip access-list extended check
 seq 10 permit tcp any any eq 22 connlimit 3 block-for 60
 seq 20 permit ip any any
`+onS0In)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.WatchElements(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("WatchElements: %v", err)
		}
	})
	time.Sleep(100 * time.Millisecond) // joined
	limit := "ip_check_in_10_src_3"
	blocked := nft.BlockedSetName(nft.EntryRef{Family: acl.IPv4, ACL: "check", Dir: acl.In, Seq: 10})
	wait := func(what string, want []string) {
		t.Helper()
		var got []string
		for range 20 {
			time.Sleep(50 * time.Millisecond)
			sets, lost := a.Tampered()
			if lost {
				t.Fatalf("%s: events lost", what)
			}
			got = append(got, sets...)
			if len(want) > 0 && len(got) >= len(want) {
				break
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: tampered %v, want %v", what, got, want)
		}
	}
	c := p.Client.Expect(t, netns.PairClient4, hostPort(netns.PairServer4, 22), netns.Connected)
	defer c.Close()
	wait("a connection", nil)
	// Its own writes, from other threads too (the kernel names the
	// committing thread).
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			runtime.LockOSThread() // never unlocked: this thread ends with it
			errs <- a.RestoreBlocked(blocked, acl.IPv4, []nft.BlockedElem{{Addr: netip.MustParseAddr(netns.PairClient4), Left: time.Minute}})
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	wait("the applier's own writes", nil)
	// A large transaction of its own: not listened to while the kernel
	// commits it, and no events lost.
	var big strings.Builder
	big.WriteString("ip access-list extended check\n seq 10 permit tcp any any eq 22 connlimit 3 block-for 60\n")
	for i := range 1500 {
		fmt.Fprintf(&big, " seq %d permit tcp host 10.1.%d.%d any eq 80\n", 100+i, i/250, i%250+1)
	}
	big.WriteString(" seq 9000 permit ip any any\n" + onS0In)
	mustApply(t, a, compile(t, big.String()))
	wait("a large apply of its own", nil)
	p.Server.MustExec(t, "nft", "flush", "set", "inet", "slxsh", limit)
	wait("nft flush set", []string{limit})
	p.Server.MustExec(t, "nft", "delete", "element", "inet", "slxsh", blocked, "{ "+netns.PairClient4+" }")
	wait("nft delete element", []string{blocked})
	p.Server.MustExec(t, "nft", "add", "table", "inet", "other")
	p.Server.MustExec(t, "nft", "add", "set", "inet", "other", "s", "{ type ipv4_addr; }")
	p.Server.MustExec(t, "nft", "add", "element", "inet", "other", "s", "{ 10.9.9.9 }")
	wait("another table", nil)
}
