package netns

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Outcome is how a connection attempt ended.
type Outcome int

// Connection outcomes.
const (
	Connected   Outcome = iota // handshake completed
	Reset                      // ECONNREFUSED or ECONNRESET: a TCP reset came back
	Unreachable                // EHOSTUNREACH, ENETUNREACH, EACCES: an ICMP error came back
	Blocked                    // EPERM: the local output path dropped the SYN
	TimedOut                   // nothing came back: dropped on the way
	Failed                     // any other error
)

var outcomeNames = [...]string{"connected", "reset", "unreachable", "blocked", "timed out", "failed"}

// String returns the outcome in words.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Classify maps a dial error to an Outcome (nil is Connected).
func Classify(err error) Outcome {
	var ne net.Error
	switch {
	case err == nil:
		return Connected
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		return Reset
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EACCES):
		return Unreachable
	case errors.Is(err, syscall.EPERM):
		return Blocked
	case errors.As(err, &ne) && ne.Timeout():
		return TimedOut
	}
	return Failed
}

// DialTimeout is how long Expect waits before calling an attempt TimedOut.
// A dropped SYN is retransmitted after one second, so anything longer than
// that only slows tests down.
const DialTimeout = 1500 * time.Millisecond

// Dial opens a TCP connection from inside the namespace to remote
// ("host:port"), from the local address local ("" for any), and classifies
// the result.
func (n *NS) Dial(local, remote string, timeout time.Duration) (net.Conn, Outcome, error) {
	d := net.Dialer{Timeout: timeout}
	if local != "" {
		ip := net.ParseIP(local)
		if ip == nil {
			return nil, Failed, fmt.Errorf("bad local address %q", local)
		}
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	var c net.Conn
	var dialErr error
	if err := n.Do(func() error {
		c, dialErr = d.Dial("tcp", remote)
		return nil
	}); err != nil {
		return nil, Failed, err
	}
	return c, Classify(dialErr), dialErr
}

// Expect dials remote from local and fails the test unless the outcome is
// want. A Connected connection is checked with an echo round trip, kept open
// (it counts against limits) and closed at the end of the test; Close it
// earlier to free its slot.
func (n *NS) Expect(t testing.TB, local, remote string, want Outcome) net.Conn {
	t.Helper()
	c, got, err := n.Dial(local, remote, DialTimeout)
	if got != want {
		if c != nil {
			c.Close()
		}
		t.Fatalf("dial %s from %q in %s: got %v (%v), want %v", remote, local, n.Name, got, err, want)
	}
	if c == nil {
		return nil
	}
	t.Cleanup(func() { c.Close() })
	if err := Echo(c); err != nil {
		t.Fatalf("dial %s from %q: connected but echo failed: %v", remote, local, err)
	}
	return c
}

// Echo writes a line on c and reads it back from the echoing server.
func Echo(c net.Conn) error {
	msg := []byte("ping\n")
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != string(msg) {
		return fmt.Errorf("echo: got %q", buf)
	}
	return nil
}

// Server is a TCP server inside a namespace that accepts connections, holds
// them open and echoes what it receives.
type Server struct {
	// Addr is the address the server listens on.
	Addr string

	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]bool
	total int
	wg    sync.WaitGroup
}

// Listen starts a Server on addr ("10.0.0.2:22", "[fd00::2]:22") inside the
// namespace; it stops at the end of the test.
func (n *NS) Listen(t testing.TB, addr string) *Server {
	t.Helper()
	var ln net.Listener
	err := n.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, n.Name, err)
	}
	s := &Server{Addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.Close)
	return s
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.total++
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			io.Copy(c, c)
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Open returns the number of connections the server holds open now.
func (s *Server) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Accepted returns the number of connections accepted so far.
func (s *Server) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Close stops the server and closes every connection it holds.
func (s *Server) Close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// ConnectedBy dials remote from local every 100 ms from the instant at on
// (waiting for it) until a connection is admitted, and returns how long
// after at that was; it fails the test when an attempt ends other than
// connected or reset, or none is admitted within the given time.
func (n *NS) ConnectedBy(t testing.TB, local, remote string, at time.Time, within time.Duration) time.Duration {
	t.Helper()
	time.Sleep(time.Until(at))
	for {
		c, got, err := n.Dial(local, remote, DialTimeout)
		if got == Connected {
			c.Close()
			return time.Since(at)
		}
		if got != Reset || time.Since(at) > within {
			t.Fatalf("%v after %v: %v (%v), want connected within %v", time.Since(at), at, got, err, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
