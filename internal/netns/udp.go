package netns

import (
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"
)

// ListenUDP starts a UDP echo server on addr inside the namespace; it stops
// at the end of the test.
func (n *NS) ListenUDP(t testing.TB, addr string) net.Addr {
	t.Helper()
	var pc net.PacketConn
	err := n.Do(func() error {
		var err error
		pc, err = net.ListenPacket("udp", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen udp on %s in %s: %v", addr, n.Name, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			k, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:k], from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr()
}

// ExchangeUDP sends one datagram from inside the namespace to remote, from
// local ("" for any), and waits for the echo: Connected when it comes back,
// Reset for an ICMP port unreachable (ECONNREFUSED), Unreachable for other
// ICMP errors (administratively prohibited arrives as EHOSTUNREACH), and
// TimedOut when nothing comes back.
func (n *NS) ExchangeUDP(local, remote string, timeout time.Duration) (Outcome, error) {
	d := net.Dialer{}
	if local != "" {
		ip := net.ParseIP(local)
		if ip == nil {
			return Failed, fmt.Errorf("bad local address %q", local)
		}
		d.LocalAddr = &net.UDPAddr{IP: ip}
	}
	var c net.Conn
	if err := n.Do(func() error {
		var err error
		c, err = d.Dial("udp", remote)
		return err
	}); err != nil {
		return Classify(err), err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("ping")); err != nil {
		return Classify(err), err
	}
	buf := make([]byte, 16)
	k, err := c.Read(buf)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return TimedOut, err
		}
		return Classify(err), err
	}
	if string(buf[:k]) != "ping" {
		return Failed, fmt.Errorf("udp echo: got %q", buf[:k])
	}
	return Connected, nil
}
