package sandbox

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"
)

// Result is how one connection attempt ended.
type Result struct {
	Conn net.Conn // nil unless connected
	Err  error
}

// Outcome describes the result in words: "connected", "refused (reset)",
// "refused (no answer: dropped)", ...
func (r Result) Outcome() string {
	var ne net.Error
	switch {
	case r.Err == nil:
		return "connected"
	case errors.Is(r.Err, syscall.ECONNREFUSED), errors.Is(r.Err, syscall.ECONNRESET):
		return "refused (TCP reset)"
	case errors.Is(r.Err, syscall.EHOSTUNREACH), errors.Is(r.Err, syscall.EACCES):
		return "refused (ICMP unreachable)"
	case errors.As(r.Err, &ne) && ne.Timeout():
		return "refused (no answer: dropped)"
	}
	return "failed: " + r.Err.Error()
}

// Dial opens n connections from the client namespace to the sandbox
// service, one after the other, and reports each on w. The connections that
// succeeded stay open; the caller closes them.
func Dial(w io.Writer, n int, port int) ([]Result, error) {
	if port == 0 {
		port = Port
	}
	addr := net.JoinHostPort(ServerAddr, strconv.Itoa(port))
	results := make([]Result, 0, n)
	err := InNamespace(ClientNS, func() error {
		for i := range n {
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			r := Result{Conn: c, Err: err}
			results = append(results, r)
			fmt.Fprintf(w, "connection %d to %s: %s\n", i+1, addr, r.Outcome())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%% Error: is the sandbox running (sudo slxsh --sandbox)? %w", err)
	}
	return results, nil
}

// Connect is `slxsh --sandbox-connect N`: it opens N connections, keeps
// the successful ones open until hold returns (e.g. Enter is pressed), then
// closes them.
func Connect(w io.Writer, n, port int, hold func()) error {
	results, err := Dial(w, n, port)
	if err != nil {
		return err
	}
	open := 0
	for _, r := range results {
		if r.Conn != nil {
			open++
		}
	}
	fmt.Fprintf(w, "%d of %d connected, %d refused.\n", open, n, n-open)
	if open > 0 && hold != nil {
		fmt.Fprintf(w, "Holding the open connections; press Enter to close them.\n")
		hold()
	}
	for _, r := range results {
		if r.Conn != nil {
			r.Conn.Close()
		}
	}
	return nil
}
