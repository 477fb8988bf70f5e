package agent

import (
	"errors"
	"io"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/netns"
	"github.com/slxsh/slxsh/internal/nft"
)

// responderIn returns a responder whose ports listen inside ns.
func responderIn(t *testing.T, ns *netns.NS, o ResponderOptions) *Responder {
	o.Listen = func(port uint16) (net.Listener, error) {
		var ln net.Listener
		err := ns.Do(func() error {
			var err error
			ln, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(int(port)))
			return err
		})
		return ln, err
	}
	r := NewResponder(o)
	t.Cleanup(r.Close)
	return r
}

func dialIn(t *testing.T, ns *netns.NS, port int) net.Conn {
	t.Helper()
	var c net.Conn
	err := ns.Do(func() error {
		var err error
		c, err = net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestKernelResponderAnswersAndHolds: the line, then EOF; a client that
// does not close is reset after Hold; with MaxConns busy, the next
// connection is reset at once; Serve moves ports and texts.
func TestKernelResponderAnswersAndHolds(t *testing.T) {
	netns.RequireRoot(t)
	ns := netns.New(t)
	ns.MustExec(t, "ip", "link", "set", "lo", "up")
	r := responderIn(t, ns, ResponderOptions{MaxConns: 1, Hold: 300 * time.Millisecond})
	if err := r.Serve([]nft.Message{{Text: "421 busy", Port: 4421}}); err != nil {
		t.Fatal(err)
	}
	held := dialIn(t, ns, 4421)
	// The client talks; the responder never reads it and still answers.
	held.Write(make([]byte, 4096))
	held.SetReadDeadline(time.Now().Add(time.Second))
	if data, err := io.ReadAll(held); err != nil || string(data) != "421 busy\r\n" {
		t.Fatalf("read %q, %v; want the line and EOF", data, err)
	}
	// held does not close: while the responder holds it, it is busy.
	var data []byte
	err := ns.Do(func() error {
		c, err := net.DialTimeout("tcp", "127.0.0.1:4421", time.Second)
		if err != nil {
			return err // the reset can beat connect's return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(time.Second))
		data, err = io.ReadAll(c)
		return err
	})
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("busy responder: read %q, %v; want a reset", data, err)
	}
	time.Sleep(500 * time.Millisecond) // past Hold: held was reset
	_, err = held.Write([]byte("x"))
	if err == nil {
		_, err = held.Write([]byte("x"))
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("a client holding on past Hold: write %v, want a reset", err)
	}
	if r.Answered() != 1 || r.Shed() != 1 {
		t.Errorf("answered %d, shed %d; want 1, 1", r.Answered(), r.Shed())
	}

	if err := r.Serve([]nft.Message{{Text: "452 later", Port: 4422}}); err != nil {
		t.Fatal(err)
	}
	c := dialIn(t, ns, 4422)
	c.SetReadDeadline(time.Now().Add(time.Second))
	if data, err := io.ReadAll(c); err != nil || string(data) != "452 later\r\n" {
		t.Fatalf("new port: read %q, %v", data, err)
	}
	if err := ns.Do(func() error {
		_, err := net.DialTimeout("tcp", "127.0.0.1:4421", time.Second)
		return err
	}); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("old port after Serve: %v, want refused", err)
	}
}

// A port that cannot be opened is an error naming it.
func TestResponderListenError(t *testing.T) {
	r := NewResponder(ResponderOptions{Listen: func(uint16) (net.Listener, error) { return nil, syscall.EADDRINUSE }})
	defer r.Close()
	err := r.Serve([]nft.Message{{Text: "x", Port: 4421}})
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Serve: %v, want EADDRINUSE", err)
	}
}
