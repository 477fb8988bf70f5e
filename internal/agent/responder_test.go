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

// TestKernelResponderAnswers: a client that talks and reads late still
// gets the line and EOF; one that does not close is reset after Hold;
// Serve moves ports and texts.
func TestKernelResponderAnswers(t *testing.T) {
	netns.RequireRoot(t)
	ns := netns.New(t)
	ns.MustExec(t, "ip", "link", "set", "lo", "up")
	r := responderIn(t, ns, ResponderOptions{Hold: 300 * time.Millisecond})
	if err := r.Serve([]nft.Message{{Text: "421 busy", Port: 4421}}); err != nil {
		t.Fatal(err)
	}
	c := dialIn(t, ns, 4421)
	c.Write(make([]byte, 4096)) // never read by the responder
	time.Sleep(200 * time.Millisecond)
	c.SetReadDeadline(time.Now().Add(time.Second))
	if data, err := io.ReadAll(c); err != nil || string(data) != "421 busy\r\n" {
		t.Fatalf("read %q, %v; want the line and EOF", data, err)
	}
	time.Sleep(300 * time.Millisecond) // past Hold
	_, err := c.Write([]byte("x"))
	if err == nil {
		_, err = c.Write([]byte("x"))
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("a client holding on past Hold: write %v, want a reset", err)
	}
	if r.Answered() != 1 {
		t.Errorf("answered %d, want 1", r.Answered())
	}

	if err := r.Serve([]nft.Message{{Text: "452 later", Port: 4422}}); err != nil {
		t.Fatal(err)
	}
	c = dialIn(t, ns, 4422)
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

// pipeListener hands out the server ends of net.Pipe connections.
type pipeListener struct{ conns chan net.Conn }

func (l pipeListener) Accept() (net.Conn, error) {
	c, ok := <-l.conns
	if !ok {
		return nil, net.ErrClosed
	}
	return c, nil
}
func (l pipeListener) Close() error   { return nil }
func (l pipeListener) Addr() net.Addr { return &net.TCPAddr{} }

// With MaxConns being answered (a client that does not read holds its
// slot until the write timeout), the next connection is closed at once.
func TestResponderBounded(t *testing.T) {
	l := pipeListener{conns: make(chan net.Conn)}
	r := NewResponder(ResponderOptions{MaxConns: 1, WriteTimeout: 300 * time.Millisecond,
		Listen: func(uint16) (net.Listener, error) { return l, nil }})
	defer r.Close()
	if err := r.Serve([]nft.Message{{Text: "421 busy", Port: 1}}); err != nil {
		t.Fatal(err)
	}
	hold, srv1 := net.Pipe()
	defer hold.Close()
	l.conns <- srv1 // nobody reads hold: the write blocks
	shed, srv2 := net.Pipe()
	defer shed.Close()
	l.conns <- srv2
	shed.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := shed.Read(make([]byte, 16)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("busy: read %d bytes, %v; want closed at once", n, err)
	}
	if r.Shed() != 1 {
		t.Errorf("shed %d, want 1", r.Shed())
	}
	time.Sleep(400 * time.Millisecond) // past the write timeout: the slot is free
	ok, srv3 := net.Pipe()
	defer ok.Close()
	l.conns <- srv3
	ok.SetReadDeadline(time.Now().Add(time.Second))
	if data, err := io.ReadAll(ok); err != nil || string(data) != "421 busy\r\n" {
		t.Fatalf("after the timeout: read %q, %v", data, err)
	}
	close(l.conns)
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

// TestKernelResponderOnePerClient: while a client's connection is being
// answered (it holds it open, up to Hold), its next one is reset at once
// without the line, so that its refusals cannot pile up under a limit it
// shares with others; once the first is closed it is answered again.
func TestKernelResponderOnePerClient(t *testing.T) {
	netns.RequireRoot(t)
	ns := netns.New(t)
	ns.MustExec(t, "ip", "link", "set", "lo", "up")
	r := responderIn(t, ns, ResponderOptions{Hold: 3 * time.Second})
	if err := r.Serve([]nft.Message{{Text: "421 busy", Port: 4421}}); err != nil {
		t.Fatal(err)
	}
	read := func(c net.Conn) (string, error) {
		c.SetReadDeadline(time.Now().Add(time.Second))
		data, err := io.ReadAll(c)
		return string(data), err
	}
	first := dialIn(t, ns, 4421)
	if got, err := read(first); got != "421 busy\r\n" || err != nil {
		t.Fatalf("first: %q, %v; want the line and EOF", got, err)
	}
	// first is still open on our side: the responder holds it.
	var second net.Conn
	ns.Do(func() error {
		var err error
		second, err = net.DialTimeout("tcp", "127.0.0.1:4421", time.Second)
		return err
	})
	if second != nil { // else reset before its connect returned
		defer second.Close()
		if got, _ := read(second); got != "" {
			t.Fatalf("second while the first is held: %q, want no line", got)
		}
	}
	if r.Shed() != 1 {
		t.Errorf("shed %d, want 1", r.Shed())
	}
	first.Close()
	time.Sleep(100 * time.Millisecond) // the responder sees the close
	if got, err := read(dialIn(t, ns, 4421)); got != "421 busy\r\n" || err != nil {
		t.Errorf("after the first closed: %q, %v; want the line", got, err)
	}
}
