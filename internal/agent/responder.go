package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slxsh/slxsh/internal/nft"
)

// The refuse message responder: the kernel redirects a connection that an
// entry with `refuse message "TEXT"` refuses to a local port of the host
// (nft.Message); the responder accepts it, writes TEXT and CRLF, and
// closes. It never reads from the client. Its memory is bounded by
// MaxConns connections at once (one goroutine each): a connection that
// arrives while MaxConns are being answered is reset at once, as with the
// agent down.

// ResponderOptions configure a Responder; zero values take the defaults.
type ResponderOptions struct {
	MaxConns     int           // connections answered at once (DefaultResponderConns)
	WriteTimeout time.Duration // for writing the line (DefaultResponderWrite)
	// Hold is how long the responder waits, after its FIN, for the client
	// to close; then it resets the connection, so that a client that never
	// closes cannot keep a flow open (DefaultResponderHold).
	Hold   time.Duration
	Logger *slog.Logger
	// Listen opens a port's listener; nil means listenMarked: TCP on
	// :PORT in the agent's namespace (IPv4 and IPv6), with the socket
	// mark that the kernel's message guard requires.
	Listen func(port uint16) (net.Listener, error)
}

// Responder defaults.
const (
	DefaultResponderConns = 256
	DefaultResponderWrite = 500 * time.Millisecond
	DefaultResponderHold  = time.Second
)

// Responder serves the refuse message ports of the applied ruleset.
type Responder struct {
	opt  ResponderOptions
	sem  chan struct{}
	mu   sync.Mutex
	open map[uint16]*msgPort

	answered, shed atomic.Uint64

	srcMu sync.Mutex
	held  map[netip.Addr][]net.Conn // connections being answered, by client address
}

// msgPort is one listening port and its current text.
type msgPort struct {
	ln   net.Listener
	text atomic.Pointer[[]byte] // TEXT + CRLF
}

// NewResponder returns a responder that serves nothing until Serve.
func NewResponder(o ResponderOptions) *Responder {
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultResponderConns
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultResponderWrite
	}
	if o.Hold <= 0 {
		o.Hold = DefaultResponderHold
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Listen == nil {
		o.Listen = listenMarked
	}
	return &Responder{opt: o, sem: make(chan struct{}, o.MaxConns), open: map[uint16]*msgPort{}, held: map[netip.Addr][]net.Conn{}}
}

// listenMarked listens on TCP :port with the socket mark nft.ResponderMark
// (SO_MARK, which needs CAP_NET_ADMIN or CAP_NET_RAW): the kernel resets a refused
// connection that reaches a listener without it, so another process that
// took the port never gets one.
func listenMarked(port uint16) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, nft.ResponderMark)
		}); cerr != nil {
			return cerr
		}
		if err != nil {
			return fmt.Errorf("set the socket mark: %w", err)
		}
		return nil
	}}
	return lc.Listen(context.Background(), "tcp", ":"+strconv.Itoa(int(port)))
}

// Serve makes the responder listen on exactly the ports of ms, with their
// texts. It opens every new port before it returns, so that the kernel may
// redirect to it; a port that cannot be opened is an error (and the ports
// of ms opened so far stay open).
func (r *Responder) Serve(ms []nft.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	want := map[uint16]bool{}
	var errs []error
	for _, m := range ms {
		want[m.Port] = true
		text := []byte(m.Text + "\r\n")
		if p := r.open[m.Port]; p != nil {
			p.text.Store(&text)
			continue
		}
		ln, err := r.opt.Listen(m.Port)
		if err != nil {
			errs = append(errs, fmt.Errorf("listen on refuse message port %d: %w", m.Port, err))
			continue
		}
		p := &msgPort{ln: ln}
		p.text.Store(&text)
		r.open[m.Port] = p
		go r.accept(p)
	}
	for port, p := range r.open {
		if !want[port] {
			p.ln.Close()
			delete(r.open, port)
		}
	}
	return errors.Join(errs...)
}

// Close stops listening on every port.
func (r *Responder) Close() {
	_ = r.Serve(nil)
}

// Answered counts the connections answered with the line.
func (r *Responder) Answered() uint64 { return r.answered.Load() }

// Shed counts connections reset instead: MaxConns were being answered, or
// their client's previous one still was.
func (r *Responder) Shed() uint64 { return r.shed.Load() }

func (r *Responder) accept(p *msgPort) {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			r.opt.Logger.Warn("refuse message responder: accept", "err", err)
			time.Sleep(10 * time.Millisecond) // EMFILE and the like: do not spin
			continue
		}
		src, ok := r.hold(c)
		if !ok {
			// Why: each connection answered is held until its client
			// closes (up to Hold), and while held it counts under the
			// limits of the entry that refused it (conntrack keeps the
			// redirected connection): a client that keeps connecting
			// would fill a limit it shares with others (a total, a
			// prefix) with its own refusals. One at a time per client.
			r.shed.Add(1)
			reset(c)
			continue
		}
		select {
		case r.sem <- struct{}{}:
			go func() {
				defer func() { <-r.sem; r.release(src, c) }()
				r.answer(c, *p.text.Load())
				r.answered.Add(1)
			}()
		default:
			r.release(src, c)
			r.shed.Add(1)
			reset(c)
		}
	}
}

// hold takes c as its client's connection being answered; ok is false
// when the client has another one that it has not closed yet. (One it has
// closed is done: the kernel saw its FIN before this connection's SYN, so
// its socket is in TIME_WAIT or CLOSE by now, and so is its flow, which no
// longer counts under a limit.)
func (r *Responder) hold(c net.Conn) (src netip.Addr, ok bool) {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		src = ap.Addr().Unmap()
	}
	r.srcMu.Lock()
	defer r.srcMu.Unlock()
	for _, h := range r.held[src] {
		if !clientClosed(h) {
			return src, false
		}
	}
	r.held[src] = append(r.held[src], c)
	return src, true
}

// release forgets c once it is answered.
func (r *Responder) release(src netip.Addr, c net.Conn) {
	r.srcMu.Lock()
	defer r.srcMu.Unlock()
	r.held[src] = slices.DeleteFunc(r.held[src], func(h net.Conn) bool { return h == c })
	if len(r.held[src]) == 0 {
		delete(r.held, src)
	}
}

// clientClosed reports whether the client of a connection being answered
// has closed its side (the socket is in TIME_WAIT or CLOSE, or is gone).
func clientClosed(c net.Conn) bool {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return false
	}
	state, ok := tcpState(tc)
	return !ok || state == tcpTimeWait || state == tcpClose
}

// answer writes the line, half-closes, and waits up to Hold for the client
// to close too; a client still holding the connection then gets a reset.
func (r *Responder) answer(c net.Conn, text []byte) {
	_ = c.SetWriteDeadline(time.Now().Add(r.opt.WriteTimeout))
	if _, err := c.Write(text); err != nil {
		reset(c)
		return
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return
	}
	if err := tc.CloseWrite(); err != nil {
		reset(c)
		return
	}
	if waitClosed(tc, r.opt.Hold) {
		c.Close()
		return
	}
	// Why a reset: a client that does not close would keep the flow open,
	// and counted under the limit that refused it, until conntrack times
	// it out. Not sooner: a reset that arrives before the client's connect
	// has returned fails the connect (EPIPE) instead of showing the line.
	reset(c)
}

// waitClosed polls the socket's TCP state until the client has closed its
// side too (TIME_WAIT or CLOSE) or d has passed. Reading would tell as
// well, but the responder never reads what the client sends.
func waitClosed(c *net.TCPConn, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for step := time.Millisecond; ; step = min(2*step, 20*time.Millisecond) {
		if state, _ := tcpState(c); state == tcpTimeWait || state == tcpClose {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(step)
	}
}

// tcpState is the state of c's socket (tcp_info); false when it cannot be
// read (closed).
func tcpState(c *net.TCPConn) (state uint8, ok bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	cerr := rc.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			state, ok = info.State, true
		}
	})
	return state, ok && cerr == nil
}

// TCP states of tcp_info (include/net/tcp_states.h).
const (
	tcpTimeWait = 6
	tcpClose    = 7
)

// reset closes a connection with a TCP reset (SO_LINGER 0).
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}
