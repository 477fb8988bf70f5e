package main

import (
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/netns"
)

// burstConns and burstParallel shape TestKernelRefuseMessageBurst: that many
// refused connections, that many at a time from the client.
const (
	burstConns    = 2000
	burstParallel = 500
)

// TestKernelRefuseMessageBurst: 2000 connections over the limit in a
// burst each get the line (and EOF) or a reset, never anything else; the
// two admitted sessions go on, the real service sees none of the burst,
// another client's show answers stay under 1 s, and the agent's peak RSS
// is reported (BENCHMARKS.md) and bounded.
func TestKernelRefuseMessageBurst(t *testing.T) {
	p, srv, addr, ag := messageSetup(t)
	a, b := admitTwo(t, p.Client, addr)

	stop := make(chan struct{})
	var slowest atomic.Int64
	var shows sync.WaitGroup
	shows.Add(1)
	go func() { // another client of the agent, during the burst
		defer shows.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			ag.mustShell("", "-c", "show access-list sessions ip mail")
			if d := int64(time.Since(start)); d > slowest.Load() {
				slowest.Store(d)
			}
		}
	}()

	var lines, resets atomic.Int64
	errs := make(chan error, burstConns)
	work := make(chan struct{}, burstConns)
	for range burstConns {
		work <- struct{}{}
	}
	close(work)
	start := time.Now()
	var wg sync.WaitGroup
	for range burstParallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				line, err := refusedOnce(p.Client, addr)
				switch {
				case err != nil:
					errs <- err
				case line:
					lines.Add(1)
				default:
					resets.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	close(stop)
	shows.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a refused connection got neither the line nor a reset: %v", err)
	}
	for i, c := range []net.Conn{a, b} {
		if err := netns.Echo(c); err != nil {
			t.Fatalf("admitted session %d after the burst: %v", i+1, err)
		}
	}
	if n := srv.Accepted(); n != 2 {
		t.Fatalf("the real service accepted %d connections, want 2", n)
	}
	hwm := procStatus(t, agentPid(t, ag), "VmHWM")
	t.Logf("%d refused connections (%d at a time) in %v: %d got the line, %d a reset; slowest show %v; agent peak RSS %d KiB",
		burstConns, burstParallel, took.Round(time.Millisecond), lines.Load(), resets.Load(),
		time.Duration(slowest.Load()).Round(time.Millisecond), hwm)
	if d := time.Duration(slowest.Load()); d >= time.Second {
		t.Errorf("a show took %v during the burst, want under 1 s", d)
	}
	if lines.Load() == 0 {
		t.Errorf("no refused connection got the line")
	}
	if !raceBuild && hwm > 100<<10 {
		t.Errorf("agent peak RSS %d KiB, want under 100 MiB", hwm)
	}
}

// refusedOnce dials addr over the limit: line is true when it read exactly
// the refuse message and EOF, false when it was reset (at the handshake or
// after it). Anything else is an error.
func refusedOnce(ns *netns.NS, addr string) (line bool, err error) {
	c, got, err := ns.Dial("", addr, 5*time.Second)
	if got == netns.Reset || errors.Is(err, syscall.EPIPE) {
		// EPIPE: a reset that came after the handshake but before
		// connect returned.
		return false, nil
	}
	if got != netns.Connected {
		return false, err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	data, err := io.ReadAll(c)
	switch {
	case err == nil && string(data) == smtpLine+"\r\n":
		return true, nil
	case errors.Is(err, syscall.ECONNRESET) && strings.HasPrefix(smtpLine+"\r\n", string(data)):
		return false, nil
	}
	return false, errors.New("read " + strconv.Quote(string(data)) + ", then " + errString(err))
}

func errString(err error) string {
	if err == nil {
		return "EOF"
	}
	return err.Error()
}
