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
	watch int // rtnetlink socket subscribed to route, address and link changes

	mu     sync.Mutex
	routes map[netip.Addr]string
	links  map[uint32]string
	epoch  uint64
	buf    []byte
}

// NewRouteLocator opens rtnetlink in the namespace netnsFd (0: the caller's).
func NewRouteLocator(netnsFd int) (*RouteLocator, error) {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{NetNS: netnsFd})
	if err != nil {
		return nil, fmt.Errorf("open rtnetlink: %w", err)
	}
	w, err := netlinkSocketOf(netnsFd, unix.NETLINK_ROUTE)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("open rtnetlink: %w", err)
	}
	groups := uint32(unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV4_ROUTE |
		unix.RTMGRP_IPV6_IFADDR | unix.RTMGRP_IPV6_ROUTE)
	if err := unix.Bind(w, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		c.Close()
		unix.Close(w)
		return nil, fmt.Errorf("watch routes: %w", err)
	}
	return &RouteLocator{c: c, watch: w, routes: map[netip.Addr]string{}, buf: make([]byte, 32<<10)}, nil
}

// Close releases the sockets.
func (l *RouteLocator) Close() error { return errors.Join(l.c.Close(), unix.Close(l.watch)) }

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
func (l *RouteLocator) routeOIF(a netip.Addr) (uint32, error) {
	rtm := make([]byte, 12) // struct rtmsg
	rtm[0] = unix.AF_INET
	if a.Is6() {
		rtm[0] = unix.AF_INET6
	}
	rtm[1] = byte(a.BitLen())
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{{Type: unix.RTA_DST, Data: a.AsSlice()}})
	if err != nil {
		return 0, err
	}
	msgs, err := l.c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETROUTE, Flags: netlink.Request},
		Data:   append(rtm, attrs...),
	})
	if err != nil {
		return 0, fmt.Errorf("route to %s: %w", a, err)
	}
	for _, m := range msgs {
		if len(m.Data) < 12 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[12:])
		if err != nil {
			return 0, err
		}
		for ad.Next() {
			if ad.Type() == unix.RTA_OIF {
				return ad.Uint32(), nil
			}
		}
	}
	return 0, fmt.Errorf("route to %s: no output interface", a)
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
