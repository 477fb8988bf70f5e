package sockdiag

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/slxsh/slxsh/internal/netns"
)

func TestRequestLayout(t *testing.T) {
	b, err := request(unix.IPPROTO_TCP, netip.MustParseAddrPort("10.0.0.2:22"), netip.MustParseAddrPort("10.0.0.1:40000"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 56 || b[0] != unix.AF_INET || b[1] != unix.IPPROTO_TCP {
		t.Fatalf("header = % x", b[:8])
	}
	if !bytes.Equal(b[8:12], []byte{0, 22, 0x9c, 0x40}) {
		t.Errorf("ports (big endian, local first) = % x", b[8:12])
	}
	if !bytes.Equal(b[12:16], []byte{10, 0, 0, 2}) || !bytes.Equal(b[28:32], []byte{10, 0, 0, 1}) {
		t.Errorf("addresses = % x / % x", b[12:28], b[28:44])
	}
	if !bytes.Equal(b[48:56], bytes.Repeat([]byte{0xff}, 8)) {
		t.Errorf("cookie = % x, want INET_DIAG_NOCOOKIE", b[48:56])
	}
	b6, err := request(unix.IPPROTO_UDP, netip.MustParseAddrPort("[fd00::2]:53"), netip.MustParseAddrPort("[fd00::1]:5353"))
	if err != nil || b6[0] != unix.AF_INET6 || b6[27] != 2 || b6[43] != 1 {
		t.Errorf("IPv6 request = % x, %v", b6, err)
	}
	if _, err := request(6, netip.MustParseAddrPort("10.0.0.2:22"), netip.MustParseAddrPort("[fd00::1]:1")); err == nil {
		t.Error("mixed families accepted")
	}
}

// TestKernelDestroyMissing runs in a fresh namespace of its own: no socket
// there has these addresses. (Destroying real sockets is covered by
// internal/conntrack's kernel tests.)
func TestKernelDestroyMissing(t *testing.T) {
	n := netns.New(t)
	c, err := Dial(n.Fd())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Destroy(unix.IPPROTO_TCP, netip.MustParseAddrPort("192.0.2.1:1"), netip.MustParseAddrPort("192.0.2.2:2"))
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("Destroy of no socket = %v, want ErrNotFound", err)
	}
}
