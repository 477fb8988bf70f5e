package nft_test

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/netns"
	"github.com/slxsh/slxsh/internal/nft"
)

// parallelConfig has `connlimit 50` on the last of nine entries that make
// one map (with maps on; as rules otherwise).
func parallelConfig() string {
	var b strings.Builder
	b.WriteString("ip access-list extended par\n")
	for i := 1; i <= 8; i++ {
		fmt.Fprintf(&b, " seq %d permit tcp host 10.9.0.%d any eq %d\n", 10*i, i, 1000+i)
	}
	fmt.Fprintf(&b, " seq 90 permit tcp any host %s eq 9000 connlimit 50\ninterface s0\n ip access-group par in\n", netns.PairServer4)
	return b.String()
}

// 200 connections opened at once against `connlimit 50`: never more than
// 50 are admitted, and the key holds exactly 50 (the 51st refused), in
// each of 10 rounds, with the limit looked up in a map and as rules
// (issue 13: exactness kept). How often the burst alone got all 50 is
// logged: the kernel's count may refuse a few of a burst (see below).
// topUpBound is how long an under-admission after a burst may last: the
// kernel's count sheds its stale entries within about a second.
const topUpBound = 3 * time.Second

func TestKernelExactUnderParallelConnects(t *testing.T) {
	p := netns.NewPair(t)
	srv := p.Server.Listen(t, net.JoinHostPort(netns.PairServer4, "9000")).Addr
	for _, run := range []int{0, -1} {
		rs := compileWith(t, parallelConfig(), nft.Options{MapRun: run})
		if maps := countMaps(rs); (maps > 0) != (run == 0) {
			t.Fatalf("MapRun %d: %d maps", run, maps)
		}
		a := applier(p.Server)
		mustApply(t, a, rs)
		exact := 0
		for round := range 10 {
			var mu sync.Mutex
			var open []net.Conn
			outs := map[netns.Outcome]int{}
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range 200 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					c, out, _ := p.Client.Dial("", srv, netns.DialTimeout)
					mu.Lock()
					outs[out]++
					if out == netns.Connected {
						open = append(open, c)
					}
					mu.Unlock()
				}()
			}
			close(start)
			wg.Wait()
			burst := len(open)
			if burst > 50 {
				t.Errorf("MapRun %d round %d: %d of 200 admitted at once, more than 50 (%v)", run, round, burst, outs)
			}
			if burst == 50 {
				exact++
			}
			// Why a top-up with retries: during a burst the kernel's count
			// can hold a connection it refused a moment earlier on the
			// other CPU (nf_conncount keeps a never-confirmed one until
			// the next jiffy there; a bare `ct count` rule does the same),
			// and right after it still holds the burst's refusals until
			// its garbage collection (at most 8 per new connection, the
			// rest by the set's periodic gc). So a burst may admit fewer,
			// and a refusal just after it may come below the limit. Such
			// an under-admission must end within its bound (topUpBound):
			// one by one the key then gets exactly its 50, and the 51st
			// and those after it are refused.
			early, deadline := 0, time.Now().Add(topUpBound)
			for len(open) < 60 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
				c, out, _ := p.Client.Dial("", srv, netns.DialTimeout)
				if out == netns.Connected {
					open = append(open, c)
					continue
				}
				if len(open) >= 50 {
					break
				}
				early++
				time.Sleep(50 * time.Millisecond)
			}
			if len(open) != 50 {
				t.Errorf("MapRun %d round %d: %d held after the burst (%d) and one by one for %v (%d refused below the limit), want exactly 50", run, round, len(open), burst, topUpBound, early)
			}
			for i := range 3 {
				if c, out, _ := p.Client.Dial("", srv, netns.DialTimeout); out == netns.Connected {
					open = append(open, c)
					t.Errorf("MapRun %d round %d: attempt %d past the limit admitted, %d held", run, round, 52+i, len(open))
				}
			}
			if early > 0 {
				t.Logf("MapRun %d round %d: %d refused below the limit before the key got its 50", run, round, early)
			}
			for _, c := range open {
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}
			// Why the wait: the kernel's count keeps the connections it
			// refused (never confirmed) and those just closed until its
			// garbage collection, which a new connection runs for at most
			// 8 of them, and the set's periodic gc for the rest: right
			// after a burst of 150 refusals the next burst would find the
			// count inflated (a bare `ct count` rule does the same:
			// BENCHMARKS.md). Rounds are apart by more than that period.
			time.Sleep(1500 * time.Millisecond)
		}
		t.Logf("MapRun %d: the burst alone admitted exactly 50 in %d of 10 rounds", run, exact)
		p.Server.MustExec(t, "nft", "delete", "table", "inet", "slxsh")
	}
}
