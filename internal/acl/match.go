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
	return e.Mismatch(proto, src, dst, sport, dport) == ""
}

// Mismatch tells why the first packet does not match the entry (as
// Matches decides): "protocol", "source address", "destination address",
// "source port" or "destination port" (the first field that differs, in
// that order), and "" when it matches.
func (e *Entry) Mismatch(proto uint8, src, dst netip.Addr, sport, dport uint16) string {
	switch {
	case e.Proto != ProtoAny && e.Proto != int(proto):
		return "protocol"
	case !e.Src.Contains(src):
		return "source address"
	case !e.Dst.Contains(dst):
		return "destination address"
	case !e.SrcPort.Matches(sport):
		return "source port"
	case !e.DstPort.Matches(dport):
		return "destination port"
	}
	return ""
}

// TotalKey is the key of a limit counted in total (`connlimit N total`).
const TotalKey = "total"

// KeyOf is the key a connection from src to dst is counted under by the
// limit: the source, its prefix ("10.24.12.0/24"), the destination, or
// TotalKey. As the compiler does, a prefix of 0 is total and a full-length
// prefix is per-source.
func (c *Connlimit) KeyOf(src, dst netip.Addr) string {
	src = src.Unmap()
	switch c.Key {
	case PerPrefix:
		switch {
		case c.PrefixLen <= 0:
			return TotalKey
		case c.PrefixLen >= src.BitLen():
			return src.String()
		}
		p, _ := src.Prefix(c.PrefixLen)
		return p.String()
	case PerDestination:
		return dst.Unmap().String()
	case Total:
		return TotalKey
	}
	return src.String()
}

// Overlaps reports whether some connection could match both entries'
// protocol, addresses and ports. It is false only when they provably
// cannot (different protocols, disjoint prefixes or ports); a wildcard
// address is taken to overlap. A change to an entry that overlaps no later
// entry cannot move sessions into or out of that entry.
func (e *Entry) Overlaps(o *Entry) bool {
	if e.Action == Remark || o.Action == Remark {
		return false
	}
	if e.Proto != ProtoAny && o.Proto != ProtoAny && e.Proto != o.Proto {
		return false
	}
	return e.Src.overlaps(o.Src) && e.Dst.overlaps(o.Dst) &&
		e.SrcPort.overlaps(o.SrcPort) && e.DstPort.overlaps(o.DstPort)
}

func (a Addr) overlaps(b Addr) bool {
	if a.Kind != AddrPrefix || b.Kind != AddrPrefix {
		return true // any, or a wildcard: assume they meet
	}
	return a.Prefix.Overlaps(b.Prefix)
}

// portRange is the ports a match admits as one interval; ok false for
// neq (two intervals; taken to overlap everything).
func (m PortMatch) portRange() (lo, hi uint16, ok bool) {
	switch m.Op {
	case PortNone:
		return 0, 65535, true
	case PortEq:
		return m.Lo, m.Lo, true
	case PortLt:
		if m.Lo == 0 {
			return 1, 0, true // nothing
		}
		return 0, m.Lo - 1, true
	case PortGt:
		if m.Lo == 65535 {
			return 1, 0, true
		}
		return m.Lo + 1, 65535, true
	case PortRange:
		return m.Lo, m.Hi, true
	}
	return 0, 65535, false
}

func (m PortMatch) overlaps(o PortMatch) bool {
	alo, ahi, aok := m.portRange()
	blo, bhi, bok := o.portRange()
	switch {
	case !aok && !bok:
		return true // two neq: 65534 ports each, they always share one
	case !aok:
		return o.overlapsNeq(m.Lo, blo, bhi)
	case !bok:
		return m.overlapsNeq(o.Lo, alo, ahi)
	}
	return alo <= bhi && blo <= ahi && alo <= ahi && blo <= bhi
}

// overlapsNeq reports whether a match with the ports lo-hi shares one
// with `neq p`: it holds a port other than p.
func (m PortMatch) overlapsNeq(p, lo, hi uint16) bool {
	return lo <= hi && !(lo == p && hi == p)
}
