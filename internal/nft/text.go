package nft

import (
	"net/netip"
	"strconv"
	"strings"
)

// This file holds the small formatting rules in which `nft list` differs from
// Go's defaults.

// addrString formats an address as nft prints it. nft uses glibc's
// inet_ntop, which differs from netip for IPv6 addresses whose first 96 bits
// are zero or that are IPv4-mapped: glibc prints "::255.255.255.255" where
// netip prints "::ffff:ffff".
func addrString(a netip.Addr) string {
	if a.Is4() {
		return a.String()
	}
	b := a.As16()
	var w [8]uint16
	for i := range w {
		w[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	base, n := longestZeroRun(w)
	if base == 0 && (n == 6 || (n == 5 && w[5] == 0xffff)) {
		v4 := netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}).String()
		if n == 5 {
			return "::ffff:" + v4
		}
		return "::" + v4
	}
	var sb strings.Builder
	for i := 0; i < 8; i++ {
		if i == base {
			sb.WriteString("::")
			i += n - 1
			continue
		}
		if i > 0 && i != base+n {
			sb.WriteByte(':')
		}
		sb.WriteString(strconv.FormatUint(uint64(w[i]), 16))
	}
	return sb.String()
}

// longestZeroRun returns the first longest run of zero words of length two
// or more, as inet_ntop chooses the "::"; base is -1 when there is none.
func longestZeroRun(w [8]uint16) (base, n int) {
	base = -1
	for i := 0; i < 8; {
		if w[i] != 0 {
			i++
			continue
		}
		j := i
		for j < 8 && w[j] == 0 {
			j++
		}
		if j-i > n {
			base, n = i, j-i
		}
		i = j
	}
	if n < 2 {
		return -1, 0
	}
	return base, n
}

// maskAddr returns the network mask of a prefix length in a family of bits
// (32 or 128).
func maskAddr(bits, length int) netip.Addr {
	b := make([]byte, bits/8)
	for i := 0; i < length; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// notAddr returns the bitwise complement of an address (a Cisco wildcard
// turned into a mask).
func notAddr(a netip.Addr) netip.Addr {
	b := a.AsSlice()
	for i := range b {
		b[i] = ^b[i]
	}
	n, _ := netip.AddrFromSlice(b)
	return n
}

// protoNames are the protocol names nft prints for `meta l4proto`: nft uses
// getprotobynumber(3), i.e. the first name in Debian's /etc/protocols.
var protoNames = map[int]string{
	0: "ip", 1: "icmp", 2: "igmp", 3: "ggp", 4: "ipencap", 5: "st", 6: "tcp",
	8: "egp", 9: "igp", 12: "pup", 17: "udp", 20: "hmp", 22: "xns-idp",
	27: "rdp", 29: "iso-tp4", 33: "dccp", 36: "xtp", 37: "ddp",
	38: "idpr-cmtp", 41: "ipv6", 43: "ipv6-route", 44: "ipv6-frag",
	45: "idrp", 46: "rsvp", 47: "gre", 50: "esp", 51: "ah", 57: "skip",
	58: "ipv6-icmp", 59: "ipv6-nonxt", 60: "ipv6-opts", 73: "rspf",
	81: "vmtp", 88: "eigrp", 89: "ospf", 94: "ipip", 97: "etherip",
	98: "encap", 103: "pim", 108: "ipcomp", 112: "vrrp", 115: "l2tp",
	124: "isis", 132: "sctp", 133: "fc", 135: "mobility-header",
	136: "udplite", 137: "mpls-in-ip", 138: "manet", 139: "hip",
	140: "shim6", 141: "wesp", 142: "rohc", 143: "ethernet",
}

// protoString formats an IP protocol number as nft prints it.
func protoString(p uint8) string {
	if n, ok := protoNames[int(p)]; ok {
		return n
	}
	return strconv.Itoa(int(p))
}

// quote renders a string in double quotes as nft does for comments and
// interface names (nft prints them raw; ours never contain quotes).
func quote(s string) string { return `"` + s + `"` }
