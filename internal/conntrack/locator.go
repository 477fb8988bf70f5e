package conntrack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// RouteLocator places flows on interfaces by route lookup, the way reverse
// path filtering does: a flow came in through the interface of the route
// back to its source, and leaves through the interface of the route to its
// destination. Flows to or from the host's own addresses get "lo" on that
// side, so they are candidates only for the bindings they can pass
// (connections to the host for `in`, connections from it for `out`).
// Asymmetric routing makes it wrong; lookups that fail give "" (unknown:
// every binding). Answers are cached until Reset, or until the routes,
// addresses or links of the namespace change (Epoch).
type RouteLocator struct {
	c     *netlink.Conn
	get   int // rtnetlink socket for route lookups (routeOIF)
	watch int // rtnetlink socket subscribed to route, address and link changes

	mu     sync.Mutex
	routes map[netip.Addr]string
	links  map[uint32]string
	epoch  uint64
	buf    []byte
	seq    uint32
	req    []byte
}

// NewRouteLocator opens rtnetlink in the namespace netnsFd (0: the caller's).
func NewRouteLocator(netnsFd int) (*RouteLocator, error) {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{NetNS: netnsFd})
	if err != nil {
		return nil, fmt.Errorf("open rtnetlink: %w", err)
	}
	get, err := netlinkSocketOf(netnsFd, unix.NETLINK_ROUTE)
	if err == nil {
		err = unix.Bind(get, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		if err != nil {
			unix.Close(get)
		}
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("open rtnetlink: %w", err)
	}
	w, err := netlinkSocketOf(netnsFd, unix.NETLINK_ROUTE)
	if err != nil {
		c.Close()
		unix.Close(get)
		return nil, fmt.Errorf("open rtnetlink: %w", err)
	}
	groups := uint32(unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV4_ROUTE |
		unix.RTMGRP_IPV6_IFADDR | unix.RTMGRP_IPV6_ROUTE)
	if err := unix.Bind(w, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		c.Close()
		unix.Close(get)
		unix.Close(w)
		return nil, fmt.Errorf("watch routes: %w", err)
	}
	return &RouteLocator{c: c, get: get, watch: w, routes: map[netip.Addr]string{},
		buf: make([]byte, 32<<10), req: make([]byte, 0, 64)}, nil
}

// Close releases the sockets.
func (l *RouteLocator) Close() error {
	return errors.Join(l.c.Close(), unix.Close(l.get), unix.Close(l.watch))
}

// Epoch drops the cached answers if the routes, addresses or links of the
// namespace changed since the last call (or the change notifications
// overflowed), and returns a number that changes each time it does: an
// answer cached under one epoch is what a lookup would give now.
func (l *RouteLocator) Epoch() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	changed := false
	for {
		_, _, err := unix.Recvfrom(l.watch, l.buf, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		// A notification, an overflow (ENOBUFS) or a broken socket: the
		// cache may be wrong.
		changed = true
		if err != nil && !errors.Is(err, unix.ENOBUFS) {
			break
		}
	}
	if changed {
		l.routes, l.links = map[netip.Addr]string{}, nil
		l.epoch++
	}
	return l.epoch
}

// Reset forgets cached routes and interface names.
func (l *RouteLocator) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.routes, l.links = map[netip.Addr]string{}, nil
	l.epoch++
}

// InIf is the interface of the route back to the flow's source.
func (l *RouteLocator) InIf(f Flow) string { return l.ifFor(f.Src) }

// OutIf is the interface of the route to the flow's destination.
func (l *RouteLocator) OutIf(f Flow) string { return l.ifFor(f.Dst) }

func (l *RouteLocator) ifFor(a netip.Addr) string {
	a = a.Unmap()
	l.mu.Lock()
	defer l.mu.Unlock()
	if n, ok := l.routes[a]; ok {
		return n
	}
	idx, err := l.routeOIF(a)
	name := ""
	if err == nil {
		name = l.linkName(idx)
	}
	l.routes[a] = name
	return name
}

// routeOIF asks the kernel for the route to a (`ip route get A`) and
// returns its output interface index.
//
// Why not through mdlayher/netlink: its Execute allocated about 6 KiB per
// lookup (a fresh receive buffer each time); attributing 100k flows from
// 25k sources made 150 MB of garbage at the agent's start. This one
// request and its answer use the locator's buffers (under l.mu).
func (l *RouteLocator) routeOIF(a netip.Addr) (uint32, error) {
	l.seq++
	family, dst := byte(unix.AF_INET), a.AsSlice()
	if a.Is6() {
		family = unix.AF_INET6
	}
	b := l.req[:0]
	b = binary.NativeEndian.AppendUint32(b, 0) // length, below
	b = binary.NativeEndian.AppendUint16(b, unix.RTM_GETROUTE)
	b = binary.NativeEndian.AppendUint16(b, unix.NLM_F_REQUEST)
	b = binary.NativeEndian.AppendUint32(b, l.seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	// struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope,
	// type, flags (u32).
	b = append(b, family, byte(a.BitLen()), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	b = attrBytes(b, unix.RTA_DST, dst)
	binary.NativeEndian.PutUint32(b, uint32(len(b)))
	l.req = b
	if err := unix.Sendto(l.get, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("route to %s: %w", a, err)
	}
	for {
		n, _, err := unix.Recvfrom(l.get, l.buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("route to %s: %w", a, err)
		}
		if oif, done, err := routeAnswer(l.buf[:n], l.seq); done {
			if err != nil {
				return 0, fmt.Errorf("route to %s: %w", a, err)
			}
			return oif, nil
		}
	}
}

// routeAnswer reads the answer to route request seq from one read: done
// is false when the read holds none (an answer to an earlier request).
func routeAnswer(b []byte, seq uint32) (oif uint32, done bool, err error) {
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b[0:]))
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return 0, true, errors.New("truncated netlink answer")
		}
		typ, s := binary.NativeEndian.Uint16(b[4:]), binary.NativeEndian.Uint32(b[8:])
		body := b[unix.NLMSG_HDRLEN:l]
		b = b[min(nlmsgAlign(l), len(b)):]
		if s != seq {
			continue
		}
		switch {
		case typ == unix.NLMSG_ERROR && len(body) >= 4:
			if code := int32(binary.NativeEndian.Uint32(body)); code != 0 {
				return 0, true, unix.Errno(-code)
			}
			return 0, true, errors.New("no route")
		case typ == unix.RTM_NEWROUTE && len(body) >= 12:
			found := false
			err := attrs(body[12:], func(typ uint16, d []byte) {
				if typ == unix.RTA_OIF && len(d) >= 4 {
					oif, found = binary.NativeEndian.Uint32(d), true
				}
			})
			if err == nil && !found {
				err = errors.New("no output interface")
			}
			return oif, true, err
		}
	}
	return 0, false, nil
}

// linkName maps an interface index to its name, listing the links once
// (and again on a miss).
func (l *RouteLocator) linkName(idx uint32) string {
	if n, ok := l.links[idx]; ok {
		return n
	}
	l.links = map[uint32]string{}
	ifi := make([]byte, 16) // struct ifinfomsg
	msgs, err := l.c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETLINK, Flags: netlink.Request | netlink.Dump},
		Data:   ifi,
	})
	if err != nil {
		return ""
	}
	for _, m := range msgs {
		if len(m.Data) < 16 {
			continue
		}
		index := binary.NativeEndian.Uint32(m.Data[4:8])
		ad, err := netlink.NewAttributeDecoder(m.Data[16:])
		if err != nil {
			continue
		}
		for ad.Next() {
			if ad.Type() == unix.IFLA_IFNAME {
				l.links[index] = ad.String()
			}
		}
	}
	return l.links[idx]
}
