// Package sockdiag ends sockets of the host itself through sock_diag
// (NETLINK_SOCK_DIAG), as `ss -K` does: SOCK_DESTROY resets a TCP
// connection at once, sending a reset to the peer and waking the local owner
// with ECONNABORTED, even when the connection is idle. It needs a kernel with
// CONFIG_INET_DIAG_DESTROY and CAP_NET_ADMIN.
package sockdiag

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// sockDestroy is the SOCK_DESTROY message type (linux/sock_diag.h).
const sockDestroy = 21

// noCookie is INET_DIAG_NOCOOKIE: match the socket by addresses only.
const noCookie = ^uint32(0)

// Conn is a sock_diag netlink socket in one network namespace.
type Conn struct {
	c *netlink.Conn
}

// Dial opens sock_diag in the namespace that netnsFd refers to (0: the
// caller's).
func Dial(netnsFd int) (*Conn, error) {
	c, err := netlink.Dial(unix.NETLINK_SOCK_DIAG, &netlink.Config{NetNS: netnsFd})
	if err != nil {
		return nil, fmt.Errorf("open sock_diag: %w", err)
	}
	return &Conn{c: c}, nil
}

// Close releases the socket.
func (c *Conn) Close() error { return c.c.Close() }

// ErrNotFound reports that no local socket has the given addresses: the
// connection is not the host's own (it is routed), or it has ended.
var ErrNotFound = errors.New("no such socket")

// Destroy resets the local socket of protocol proto (unix.IPPROTO_TCP or
// IPPROTO_UDP) bound to local and connected to remote. It returns
// ErrNotFound when there is none.
func (c *Conn) Destroy(proto uint8, local, remote netip.AddrPort) error {
	req, err := request(proto, local, remote)
	if err != nil {
		return err
	}
	_, err = c.c.Execute(netlink.Message{
		Header: netlink.Header{Type: sockDestroy, Flags: netlink.Request | netlink.Acknowledge},
		Data:   req,
	})
	if errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("destroy %s %s -> %s: %w", protoName(proto), local, remote, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("destroy %s %s -> %s: %w", protoName(proto), local, remote, err)
	}
	return nil
}

func protoName(p uint8) string {
	if p == unix.IPPROTO_UDP {
		return "udp"
	}
	return "tcp"
}

// request encodes struct inet_diag_req_v2 for one socket:
//
//	u8 family, u8 protocol, u8 ext, u8 pad, u32 states,
//	inet_diag_sockid { be16 sport, be16 dport, be32 src[4], be32 dst[4], u32 if, u32 cookie[2] }
//
// where src/sport are the local end and dst/dport the remote one.
func request(proto uint8, local, remote netip.AddrPort) ([]byte, error) {
	la, ra := local.Addr().Unmap(), remote.Addr().Unmap()
	if la.Is4() != ra.Is4() {
		return nil, fmt.Errorf("destroy socket: %s and %s are of different families", local, remote)
	}
	b := make([]byte, 56)
	b[0] = unix.AF_INET6
	if la.Is4() {
		b[0] = unix.AF_INET
	}
	b[1] = proto
	binary.NativeEndian.PutUint32(b[4:], ^uint32(0)) // all states
	binary.BigEndian.PutUint16(b[8:], local.Port())
	binary.BigEndian.PutUint16(b[10:], remote.Port())
	copy(b[12:28], la.AsSlice())
	copy(b[28:44], ra.AsSlice())
	binary.NativeEndian.PutUint32(b[48:], noCookie)
	binary.NativeEndian.PutUint32(b[52:], noCookie)
	return b, nil
}
