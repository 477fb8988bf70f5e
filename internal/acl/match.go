package acl

import "net/netip"

// The one home of what a packet alone decides about an entry: its
// protocol, addresses and ports. The compiler turns the same fields into
// nft matches; the session side (internal/conntrack) and the simulator
// (internal/nft) call these.

// Contains reports whether the address match covers ip (an IPv4-mapped
// IPv6 address counts as IPv4). Any matches every address.
func (a Addr) Contains(ip netip.Addr) bool {
	ip = ip.Unmap()
	switch a.Kind {
	case AddrPrefix:
		return a.Prefix.Contains(ip)
	case AddrWildcard:
		if a.Base.BitLen() != ip.BitLen() {
			return false
		}
		x, b, w := ip.AsSlice(), a.Base.AsSlice(), a.Wildcard.AsSlice()
		for i := range x {
			if x[i]&^w[i] != b[i] {
				return false
			}
		}
	}
	return true
}

// Matches reports whether port p satisfies the port match (PortNone
// matches every port).
func (m PortMatch) Matches(p uint16) bool {
	switch m.Op {
	case PortEq:
		return p == m.Lo
	case PortNeq:
		return p != m.Lo
	case PortLt:
		return p < m.Lo
	case PortGt:
		return p > m.Lo
	case PortRange:
		return p >= m.Lo && p <= m.Hi
	}
	return true
}

// Matches reports whether the first packet of a connection (protocol,
// addresses and ports of its original direction) matches the entry's
// protocol, addresses and ports. Options (limits, time ranges, the local
// user) are not looked at.
func (e *Entry) Matches(proto uint8, src, dst netip.Addr, sport, dport uint16) bool {
	if e.Proto != ProtoAny && e.Proto != int(proto) {
		return false
	}
	return e.Src.Contains(src) && e.Dst.Contains(dst) && e.SrcPort.Matches(sport) && e.DstPort.Matches(dport)
}
