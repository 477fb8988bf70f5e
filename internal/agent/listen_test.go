package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestGuardBoundsGuestConnections(t *testing.T) {
	var g guard
	now := time.Now()
	guest := Peer{UID: 1000}
	var releases []func()
	for i := range guestConnsPerUID {
		release, refusal := g.admit(guest, false, now)
		if refusal != "" {
			t.Fatalf("connection %d refused: %s", i+1, refusal)
		}
		releases = append(releases, release)
	}
	if _, refusal := g.admit(guest, false, now); !strings.HasPrefix(refusal, "% Error: too many connections from uid 1000") {
		t.Errorf("connection %d of one uid: refusal %q", guestConnsPerUID+1, refusal)
	}
	if _, refusal := g.admit(Peer{UID: 1001}, false, now); refusal != "" {
		t.Errorf("another uid refused: %s", refusal)
	}
	for range 100 {
		if _, refusal := g.admit(Peer{UID: 0}, true, now); refusal != "" {
			t.Fatalf("administrator refused: %s", refusal)
		}
	}
	releases[0]()
	if _, refusal := g.admit(guest, false, now); refusal != "" {
		t.Errorf("connection after one closed refused: %s", refusal)
	}
}

func TestGuardBoundsAllGuests(t *testing.T) {
	var g guard
	now := time.Now()
	for uid := range uint32(guestConns) {
		if _, refusal := g.admit(Peer{UID: 2000 + uid}, false, now); refusal != "" {
			t.Fatalf("guest %d refused: %s", uid, refusal)
		}
	}
	if _, refusal := g.admit(Peer{UID: 9999}, false, now); refusal == "" {
		t.Errorf("guest connection %d admitted", guestConns+1)
	}
}

func TestGuardRatePerGuest(t *testing.T) {
	var g guard
	now := time.Now()
	guest := Peer{UID: 1000}
	for i := range guestBurst {
		release, refusal := g.admit(guest, false, now)
		if refusal != "" {
			t.Fatalf("request %d of the burst refused: %s", i+1, refusal)
		}
		release()
	}
	if _, refusal := g.admit(guest, false, now); !strings.HasPrefix(refusal, "% Error: too many requests from uid 1000") {
		t.Errorf("request over the burst: refusal %q", refusal)
	}
	// Tokens come back at guestRate per second.
	later := now.Add(time.Second)
	for i := range guestRate {
		release, refusal := g.admit(guest, false, later)
		if refusal != "" {
			t.Fatalf("request %d a second later refused: %s", i+1, refusal)
		}
		release()
	}
	if _, refusal := g.admit(guest, false, later); refusal == "" {
		t.Errorf("request %d a second later admitted", guestRate+1)
	}
}

// writeRequest writes a syntactically valid request of about size bytes to w
// without holding it in memory, then waits for the reader.
func writeRequest(w io.Writer, size int) {
	io.WriteString(w, `{"version":2,"op":"running","args":"`)
	chunk := strings.Repeat("a", 32<<10)
	for n := 0; n < size; n += len(chunk) {
		if _, err := io.WriteString(w, chunk[:min(len(chunk), size-n)]); err != nil {
			return
		}
	}
	io.WriteString(w, "\"}\n")
}

func TestReadRequestSizeBounds(t *testing.T) {
	for _, tc := range []struct {
		admin bool
		size  int
		ok    bool
	}{
		{false, 100, true},
		{false, maxGuestRequest - 1000, true},
		{false, maxGuestRequest + 1000, false},
		{true, maxGuestRequest + 1000, true},
		{true, maxRequest - 1000, true},
		{true, maxRequest + 1000, false},
		{true, 100 << 20, false},
	} {
		t.Run(fmt.Sprintf("admin=%v,size=%d", tc.admin, tc.size), func(t *testing.T) {
			var g guard
			server, client := net.Pipe()
			defer server.Close()
			go func() {
				defer client.Close()
				writeRequest(client, tc.size)
			}()
			req, err := g.readRequest(server, tc.admin, time.Now().Add(10*time.Second))
			if tc.ok && (err != nil || len(req.Args) < tc.size) {
				t.Errorf("request refused: %v", err)
			}
			if !tc.ok && !errors.Is(err, errTooLarge) {
				t.Errorf("error %v, want errTooLarge", err)
			}
			// Every slot is given back (a large request's once its
			// memory is: in the background).
			held := func() int { return len(g.big) + len(g.adminLarge) + len(g.guestLarge) }
			for end := time.Now().Add(5 * time.Second); held() != 0 && time.Now().Before(end); {
				time.Sleep(5 * time.Millisecond)
			}
			if held() != 0 {
				t.Error("a large-request slot is still held")
			}
		})
	}
}

// TestLargeRequestsOneAtATime: while one administrator's large request
// holds the big slot, a second one waits for it (bounded memory), and
// gives up at its deadline.
func TestLargeRequestsOneAtATime(t *testing.T) {
	var g guard
	g.init()
	g.big <- struct{}{} // a large request being read
	server, client := net.Pipe()
	defer server.Close()
	go func() {
		defer client.Close()
		writeRequest(client, 2*maxGuestRequest)
	}()
	start := time.Now()
	_, err := g.readRequest(server, true, time.Now().Add(200*time.Millisecond))
	if !errors.Is(err, errTooLarge) || time.Since(start) < 150*time.Millisecond {
		t.Errorf("second large request: %v after %v", err, time.Since(start))
	}
}

func TestGuestsRunTwoAtATime(t *testing.T) {
	var g guard
	deadline := time.Now().Add(100 * time.Millisecond)
	var done []func()
	for uid := range uint32(guestRunning) {
		release, ok := g.waitRunning(1000+uid, deadline)
		if !ok {
			t.Fatal("running slot not had")
		}
		done = append(done, release)
	}
	if _, ok := g.waitRunning(2000, deadline); ok {
		t.Errorf("guest request %d runs at once", guestRunning+1)
	}
	done[0]()
	if _, ok := g.waitRunning(2000, time.Now().Add(time.Second)); !ok {
		t.Error("running slot not given back")
	}
}

// TestGuestRunsOneAtATime: one guest uid holds one running slot at most,
// so that requests it does not read cannot keep the other guests out.
func TestGuestRunsOneAtATime(t *testing.T) {
	var g guard
	release, ok := g.waitRunning(1000, time.Now().Add(time.Second))
	if !ok {
		t.Fatal("running slot not had")
	}
	if _, ok := g.waitRunning(1000, time.Now().Add(50*time.Millisecond)); ok {
		t.Error("a second request of uid 1000 runs beside its first")
	}
	other, ok := g.waitRunning(1001, time.Now().Add(50*time.Millisecond))
	if !ok {
		t.Fatal("uid 1001 kept out by uid 1000")
	}
	other()
	release()
	if again, ok := g.waitRunning(1000, time.Now().Add(50*time.Millisecond)); !ok {
		t.Error("uid 1000's slot not given back")
	} else {
		again()
	}
}

func TestAcceptLoopSurvivesErrors(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	errs := []error{
		&net.OpError{Op: "accept", Err: syscall.EMFILE},
		&net.OpError{Op: "accept", Err: syscall.ENFILE},
		&net.OpError{Op: "accept", Err: syscall.ECONNABORTED},
		&net.OpError{Op: "accept", Err: syscall.ENOBUFS},
		errors.New("something else"),
	}
	conn := &net.UnixConn{}
	calls, handled, logged := 0, 0, 0
	accept := func() (*net.UnixConn, error) {
		calls++
		switch {
		case calls <= len(errs):
			return nil, errs[calls-1]
		case calls == len(errs)+1:
			return conn, nil
		}
		return nil, net.ErrClosed
	}
	start := time.Now()
	err := acceptLoop(context.Background(), accept, func(c *net.UnixConn) { handled++ },
		func(err error, delay time.Duration) { logged++ })
	if err != nil || handled != 1 || calls != len(errs)+2 {
		t.Errorf("acceptLoop = %v after %d accepts, %d handled", err, calls, handled)
	}
	// Backed off 5+10+20+40+80 ms, logged once (at most once a second).
	if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
		t.Errorf("backed off %v in total", d)
	}
	if logged != 1 {
		t.Errorf("logged %d times", logged)
	}
}

func TestAcceptLoopEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(50 * time.Millisecond)
		cancel()
	}()
	err := acceptLoop(ctx, func() (*net.UnixConn, error) { return nil, syscall.EMFILE },
		func(*net.UnixConn) {}, func(error, time.Duration) {})
	if err != nil {
		t.Errorf("acceptLoop = %v", err)
	}
}

func TestRaiseFileLimit(t *testing.T) {
	var l unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &l)
	t.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &l) })
	low := l
	low.Cur = min(l.Max, 256)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	before, after, err := RaiseFileLimit()
	if err != nil || before != low.Cur || after != l.Max {
		t.Errorf("RaiseFileLimit = %d, %d, %v; want %d, %d", before, after, err, low.Cur, l.Max)
	}
	var now unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &now)
	if now.Cur != l.Max {
		t.Errorf("soft limit now %d, want %d", now.Cur, l.Max)
	}
}
