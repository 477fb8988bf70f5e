package nft_test

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/netns"
)

// move sends n bytes on c and reads them back from the echo server: 2n
// bytes of payload through the connection, half in each direction.
func move(t *testing.T, c net.Conn, n int) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	out := bytes.Repeat([]byte("q"), n)
	go c.Write(out)
	in := make([]byte, n)
	if _, err := io.ReadFull(c, in); err != nil {
		t.Fatalf("moving %d bytes: %v", n, err)
	}
}

// `quota 100 kbytes per minute per-source`: the bytes of a source's
// admitted connections, both directions, count; once over, its next
// connection is refused (its open one goes on), another source's is not,
// and both are admitted again once the minute from their first connection
// is over.
func TestKernelQuota(t *testing.T) {
	t.Parallel() // it waits a minute, in namespaces of its own
	p := netns.NewPair(t)
	p.Client.AddAddr(t, "c0", extraClient+"/24")
	server(t, p.Server, netns.PairServer4, 80)
	applyConfig(t, p.Server, `ip access-list extended check
 seq 10 permit tcp any any eq 80 quota 100 kbytes per minute per-source
 seq 20 permit ip any any
`+onS0In)
	web := hostPort(netns.PairServer4, 80)
	start := time.Now()
	a := p.Client.Expect(t, netns.PairClient4, web, netns.Connected)
	p.Client.Expect(t, extraClient, web, netns.Connected)
	move(t, a, 25_000) // 50 KB moved: under the quota
	p.Client.Expect(t, netns.PairClient4, web, netns.Connected)
	move(t, a, 50_000) // 150 KB moved (and headers): over
	p.Client.Expect(t, netns.PairClient4, web, netns.Reset)
	p.Client.Expect(t, extraClient, web, netns.Connected)
	move(t, a, 1000) // the open connection goes on
	p.Client.Expect(t, netns.PairClient4, web, netns.Reset)

	time.Sleep(time.Until(start.Add(61 * time.Second)))
	p.Client.Expect(t, netns.PairClient4, web, netns.Connected)
	p.Client.Expect(t, extraClient, web, netns.Connected)
}
