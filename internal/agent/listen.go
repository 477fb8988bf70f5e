package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slxsh/slxsh/internal/agent/wire"
)

// What one local user can make the agent hold (issue 12). The socket is
// world-connectable, so every bound below is about peers who may only
// look (guests): they can neither starve an administrator's change or the
// drift repair, nor exhaust the agent's memory or file descriptors.
// Administrators (root, the admin group) are trusted not to attack, but
// their requests are bounded in size too, so that a runaway script of
// theirs cannot exhaust the agent's memory either.
const (
	// smallRequest is what every request may send without a slot: shell
	// requests but a pasted config block are far smaller.
	smallRequest = 64 << 10
	// maxGuestRequest is the largest request a guest may send (show
	// requests are a few hundred bytes). Reading past smallRequest takes
	// one of guestLarge slots.
	maxGuestRequest = 1 << 20
	guestLarge      = 2
	// maxRequest is the largest request an administrator may send: a
	// 65535-entry ACL pasted as one block (about 5 MB) fits. Reading past
	// smallRequest takes one of adminLarge slots, past maxGuestRequest the
	// one big slot, so at most one such request is read at a time.
	maxRequest = 16 << 20
	adminLarge = 4
	// guestConnsPerUID bounds the open connections of one guest uid;
	// guestConns those of all guests together. A connection over either
	// is answered with an error and closed at once.
	guestConnsPerUID = 8
	guestConns       = 64
	// guestRunning bounds the guest requests that run at once (each takes
	// the agent's lock for its answer, and holds its answer in memory
	// until it is written), so that an administrator's change and the
	// drift repair wait behind at most that many. One guest uid runs one
	// request at a time, so that it cannot hold every slot.
	guestRunning = 2
	// guestRate and guestBurst are the token bucket of each guest uid:
	// requests per second, and how many may come at once. A shell sends
	// two or three per command.
	guestRate  = 20
	guestBurst = 40
)

// readTimeout bounds how long a connection may take to send its request
// (shells send it at once); a guest that connects and stays silent holds
// one of its few connections only that long.
var readTimeout = 10 * time.Second

// guestWriteTimeout bounds how long a guest may take to read its answer,
// which holds its running slot until written: a guest that does not read
// keeps that slot from the others no longer than this.
var guestWriteTimeout = 5 * time.Second

// errTooLarge is a request over its size limit.
var errTooLarge = errors.New("request too large")

// guard keeps the per-peer bounds of one Server. Its zero value is ready.
type guard struct {
	mu          sync.Mutex
	conns       map[uint32]int // open guest connections per uid
	total       int            // open guest connections
	buckets     map[uint32]*bucket
	lastRefusal time.Time // when a refusal was last logged
	tarpit      int       // refusals being held back (refuse)

	uidRunning map[uint32]chan struct{} // a guest uid's running request, cap 1 (while it has connections)

	once       sync.Once
	running    chan struct{} // guest requests running, cap guestRunning
	guestLarge chan struct{} // guests reading past smallRequest
	adminLarge chan struct{} // administrators reading past smallRequest
	big        chan struct{} // reading past maxGuestRequest, cap 1
}

func (g *guard) init() {
	g.once.Do(func() {
		g.running = make(chan struct{}, guestRunning)
		g.guestLarge = make(chan struct{}, guestLarge)
		g.adminLarge = make(chan struct{}, adminLarge)
		g.big = make(chan struct{}, 1)
	})
}

// bucket is a token bucket: tokens refill at guestRate per second up to
// guestBurst.
type bucket struct {
	tokens float64
	last   time.Time
}

// admit decides whether a new connection of peer may be served. For a
// guest it counts the connection and takes a token; release undoes the
// count. A refused connection gets the returned message.
func (g *guard) admit(peer Peer, admin bool, now time.Time) (release func(), refusal string) {
	if admin {
		return func() {}, ""
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conns == nil {
		g.conns, g.buckets = map[uint32]int{}, map[uint32]*bucket{}
	}
	if g.conns[peer.UID] >= guestConnsPerUID || g.total >= guestConns {
		return nil, fmt.Sprintf("%% Error: too many connections from uid %d; try again in a moment", peer.UID)
	}
	b := g.buckets[peer.UID]
	if b == nil {
		b = &bucket{tokens: guestBurst, last: now}
		g.buckets[peer.UID] = b
	}
	b.tokens = min(guestBurst, b.tokens+now.Sub(b.last).Seconds()*guestRate)
	b.last = now
	if b.tokens < 1 {
		return nil, fmt.Sprintf("%% Error: too many requests from uid %d; try again in a moment", peer.UID)
	}
	b.tokens--
	g.conns[peer.UID]++
	g.total++
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.total--
		if g.conns[peer.UID]--; g.conns[peer.UID] == 0 {
			delete(g.conns, peer.UID)
			delete(g.uidRunning, peer.UID) // no connection of uid holds or waits for it
		}
		// A full bucket is the same as none: forget it, so that the map
		// holds only uids seen lately.
		for uid, b := range g.buckets {
			if g.conns[uid] == 0 && b.tokens+now.Sub(b.last).Seconds()*guestRate >= guestBurst {
				delete(g.buckets, uid)
			}
		}
	}, ""
}

// waitRunning takes a running slot for a request of guest uid (admitted,
// so counted in conns), after its uid's own slot, giving up at deadline.
func (g *guard) waitRunning(uid uint32, deadline time.Time) (release func(), ok bool) {
	g.init()
	g.mu.Lock()
	if g.uidRunning == nil {
		g.uidRunning = map[uint32]chan struct{}{}
	}
	own := g.uidRunning[uid]
	if own == nil {
		own = make(chan struct{}, 1)
		g.uidRunning[uid] = own
	}
	g.mu.Unlock()
	releaseOwn, ok := take(own, deadline)
	if !ok {
		return nil, false
	}
	releaseSlot, ok := take(g.running, deadline)
	if !ok {
		releaseOwn()
		return nil, false
	}
	return func() { releaseSlot(); releaseOwn() }, true
}

// take takes a slot of sem, giving up at deadline.
func take(sem chan struct{}, deadline time.Time) (release func(), ok bool) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, true
	case <-t.C:
		return nil, false
	}
}

// readRequest reads one request from c, which must arrive by deadline:
// up to maxGuestRequest bytes from a guest, maxRequest from an
// administrator, with the slots for large requests taken on the way, so
// that the memory all connections hold for their requests stays bounded.
func (g *guard) readRequest(c net.Conn, admin bool, deadline time.Time) (*wire.Request, error) {
	g.init()
	r := &limitedReader{r: c, limit: smallRequest, deadline: deadline}
	if admin {
		r.stages = []stage{{maxGuestRequest, g.adminLarge}, {maxRequest, g.big}}
	} else {
		r.stages = []stage{{maxGuestRequest, g.guestLarge}}
	}
	defer func() {
		if r.n <= maxGuestRequest {
			r.release()
			return
		}
		// Give the memory of a large request back at once, so that one
		// after another never piles up (their buffers are garbage as
		// soon as the request is decoded or refused): the next large
		// request waits for its slot until that is done, but this one
		// goes on (a collection of a 50k-entry agent's heap takes 60-100
		// ms).
		go func() {
			debug.FreeOSMemory()
			r.release()
		}()
	}()
	var req wire.Request
	if err := json.NewDecoder(r).Decode(&req); err != nil {
		if r.over {
			return nil, errTooLarge
		}
		return nil, err
	}
	return &req, nil
}

// stage is a larger limit and the semaphore a reader takes to go on to it.
type stage struct {
	limit int64
	slot  chan struct{}
}

// limitedReader reads up to limit bytes, and on through its stages, each
// once it holds the stage's slot.
type limitedReader struct {
	r        io.Reader
	n, limit int64
	stages   []stage
	held     []func()
	deadline time.Time
	over     bool // a limit was reached (or its slot not had in time)
}

func (l *limitedReader) Read(p []byte) (int, error) {
	for l.n >= l.limit && len(l.stages) > 0 {
		release, ok := take(l.stages[0].slot, l.deadline)
		if !ok {
			break
		}
		l.held = append(l.held, release)
		l.limit, l.stages = l.stages[0].limit, l.stages[1:]
	}
	if l.n >= l.limit {
		l.over = true
		return 0, errTooLarge
	}
	p = p[:min(int64(len(p)), l.limit-l.n)]
	n, err := l.r.Read(p)
	l.n += int64(n)
	return n, err
}

func (l *limitedReader) release() {
	for _, r := range l.held {
		r()
	}
	l.held = nil
}

// acceptLoop accepts connections until ctx ends and runs handle for each.
// It never gives up on an error: running out of file descriptors (EMFILE,
// ENFILE), of memory for a socket (ENOBUFS, ENOMEM) or a connection that
// was aborted before it was accepted are transient, so it waits (5 ms,
// doubling up to 1 s, as net/http does) and accepts again; the agent must
// keep serving its administrators whatever a local user does. It returns
// only when ctx ends or the listener was closed.
func acceptLoop(ctx context.Context, accept func() (*net.UnixConn, error), handle func(*net.UnixConn), log func(err error, delay time.Duration)) error {
	var delay time.Duration
	var lastLog time.Time
	for {
		c, err := accept()
		if err == nil {
			delay = 0
			handle(c)
			continue
		}
		if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
			return nil
		}
		delay = min(max(2*delay, 5*time.Millisecond), time.Second)
		if time.Since(lastLog) >= time.Second { // at most one line a second
			log(err, delay)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
}

// RaiseFileLimit raises the soft limit of open files (RLIMIT_NOFILE) to
// the hard limit, so that many idle connections do not run the agent out
// of descriptors. Go's syscall package does the same at start since Go
// 1.19; the agent does it itself so that it does not depend on the
// runtime and the limit is logged. It returns the limits before and after.
func RaiseFileLimit() (before, after uint64, err error) {
	var l unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &l); err != nil {
		return 0, 0, fmt.Errorf("get RLIMIT_NOFILE: %w", err)
	}
	before = l.Cur
	if l.Cur == l.Max {
		return before, l.Cur, nil
	}
	l.Cur = l.Max
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &l); err != nil {
		return before, before, fmt.Errorf("set RLIMIT_NOFILE to %d: %w", l.Max, err)
	}
	return before, l.Cur, nil
}

// isFileLimit reports whether err is running out of file descriptors.
func isFileLimit(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// requestLimit is the size limit of a peer's requests.
func requestLimit(admin bool) int {
	if admin {
		return maxRequest
	}
	return maxGuestRequest
}

// tarpitMax bounds the refused connections held back at once, and
// tarpitDelay is how long each is held: a guest that floods the socket
// waits for its refusals instead of spinning (and taking the CPU an
// administrator's change needs), while the descriptors held stay few.
const (
	tarpitMax   = 256
	tarpitDelay = 500 * time.Millisecond
)

// refuse answers a connection that is over a bound, without waiting long
// for a peer that does not read, and logs it at most once a second.
func (s *Server) refuse(c net.Conn, peer Peer, msg string) {
	s.guard.mu.Lock()
	quiet := time.Since(s.guard.lastRefusal) < time.Second
	if !quiet {
		s.guard.lastRefusal = time.Now()
	}
	hold := s.guard.tarpit < tarpitMax
	if hold {
		s.guard.tarpit++
	}
	s.guard.mu.Unlock()
	if !quiet {
		s.log.Warn("refusing a request over its bounds (logged once a second)", "uid", peer.UID, "pid", peer.PID, "why", msg)
	}
	if hold {
		time.Sleep(tarpitDelay)
		s.guard.mu.Lock()
		s.guard.tarpit--
		s.guard.mu.Unlock()
	}
	c.SetWriteDeadline(time.Now().Add(time.Second))
	json.NewEncoder(c).Encode(&wire.Response{Version: wire.ProtocolVersion, Error: msg})
}
