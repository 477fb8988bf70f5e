package netns

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// TCP flags for SendSegment.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagPSH = 0x08
	FlagACK = 0x10
)

// SendSegment sends one IPv4 TCP segment with the given flags from src to
// dst out of the namespace, through a raw socket: a segment that no
// connection of this host opened (a forged ACK, a stray FIN), as a scanner
// or an injector sends it. src may be any address, the namespace's or not.
func (n *NS) SendSegment(t testing.TB, src, dst netip.AddrPort, flags uint8) {
	t.Helper()
	pkt := segment(src, dst, flags)
	err := n.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW) // IP_HDRINCL implied
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Sendto(fd, pkt, 0, &unix.SockaddrInet4{Addr: dst.Addr().As4()})
	})
	if err != nil {
		t.Fatalf("send a TCP segment %v -> %v from %s: %v", src, dst, n.Name, err)
	}
}

// segment builds the IPv4 packet of a 20-byte TCP header without payload.
func segment(src, dst netip.AddrPort, flags uint8) []byte {
	p := make([]byte, 40)
	p[0], p[8], p[9] = 0x45, 64, unix.IPPROTO_TCP // version 4, IHL 5; TTL; protocol
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(p[12:16], s[:])
	copy(p[16:20], d[:])
	binary.BigEndian.PutUint16(p[10:], checksum(p[:20], 0))
	tcp := p[20:]
	binary.BigEndian.PutUint16(tcp[0:], src.Port())
	binary.BigEndian.PutUint16(tcp[2:], dst.Port())
	binary.BigEndian.PutUint32(tcp[4:], 0x1000_0000) // seq
	binary.BigEndian.PutUint32(tcp[8:], 0x2000_0000) // ack
	tcp[12], tcp[13] = 5<<4, flags                   // data offset 5 words
	binary.BigEndian.PutUint16(tcp[14:], 65535)      // window
	// The pseudo-header: source, destination, zero, protocol, length.
	var pseudo uint32
	for _, a := range [][4]byte{s, d} {
		pseudo += uint32(binary.BigEndian.Uint16(a[0:])) + uint32(binary.BigEndian.Uint16(a[2:]))
	}
	pseudo += unix.IPPROTO_TCP + uint32(len(tcp))
	binary.BigEndian.PutUint16(tcp[16:], checksum(tcp, pseudo))
	return p
}

// checksum is the Internet checksum of b, starting from sum.
func checksum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
