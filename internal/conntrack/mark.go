package conntrack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// Why a mark update of our own: ti-mo/conntrack's Update allocates some
// 10 KiB per call (message marshalling, a fresh receive buffer); marking
// the 100k sessions of a new limit as old allocated 1.2 GB and pushed the
// agent's peak RSS to ~100 MiB (BENCHMARKS.md, issue 13). This builds the
// message in one reused buffer: the original tuple, the zone and the mark,
// in the flow's own family (so no reply tuple is needed to pick it).

// More ctnetlink constants (linux/netfilter/nfnetlink_conntrack.h).
const (
	ctNew        = 1<<8 | 0 // NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_NEW
	ctaTupleZone = 3
)

// marker sends mark updates on one ctnetlink socket and reads their acks.
type marker struct {
	mu  sync.Mutex
	fd  int
	seq uint32
	msg []byte
	ack []byte
}

func openMarker(netnsFd int) (*marker, error) {
	fd, err := netlinkSocket(netnsFd)
	if err != nil {
		return nil, fmt.Errorf("open ctnetlink: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind ctnetlink: %w", err)
	}
	return &marker{fd: fd, msg: make([]byte, 0, 256), ack: make([]byte, 8<<10)}, nil
}

func (m *marker) close() error { return unix.Close(m.fd) }

// setMark sets the whole ct mark of the flow with f's original tuple and
// zone.
func (m *marker) setMark(f Flow, mark uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	b := m.msg[:0]
	b = binary.NativeEndian.AppendUint32(b, 0) // length, below
	b = binary.NativeEndian.AppendUint16(b, ctNew)
	b = binary.NativeEndian.AppendUint16(b, unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	b = binary.NativeEndian.AppendUint32(b, m.seq)
	b = binary.NativeEndian.AppendUint32(b, 0) // port id: the kernel's
	family := byte(unix.AF_INET)
	if f.Is6() {
		family = unix.AF_INET6
	}
	b = append(b, family, 0, 0, 0) // nfgenmsg: family, version, res_id
	tuple := len(b)
	b = attrHdr(b, ctaTupleOrig|unix.NLA_F_NESTED)
	ip := len(b)
	b = attrHdr(b, ctaTupleIP|unix.NLA_F_NESTED)
	if family == unix.AF_INET {
		s, d := f.Src.Unmap().As4(), f.Dst.Unmap().As4()
		b = attrBytes(b, ctaIPv4Src, s[:])
		b = attrBytes(b, ctaIPv4Dst, d[:])
	} else {
		s, d := f.Src.As16(), f.Dst.As16()
		b = attrBytes(b, ctaIPv6Src, s[:])
		b = attrBytes(b, ctaIPv6Dst, d[:])
	}
	b = attrEnd(b, ip)
	proto := len(b)
	b = attrHdr(b, ctaTupleProto|unix.NLA_F_NESTED)
	b = attrBytes(b, ctaProtoNum, []byte{f.Proto})
	b = attrBytes(b, ctaProtoSrc, binary.BigEndian.AppendUint16(nil, f.SrcPort))
	b = attrBytes(b, ctaProtoDst, binary.BigEndian.AppendUint16(nil, f.DstPort))
	b = attrEnd(b, proto)
	if f.Zone != 0 {
		b = attrBytes(b, ctaTupleZone, binary.BigEndian.AppendUint16(nil, f.Zone))
	}
	b = attrEnd(b, tuple)
	if f.Zone != 0 {
		b = attrBytes(b, ctaZone, binary.BigEndian.AppendUint16(nil, f.Zone))
	}
	b = attrBytes(b, ctaMark, binary.BigEndian.AppendUint32(nil, mark))
	binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
	m.msg = b
	if err := unix.Sendto(m.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("mark %s: %w", f, err)
	}
	return m.readAck(f)
}

// readAck waits for the answer to the last request.
func (m *marker) readAck(f Flow) error {
	for {
		n, _, err := unix.Recvfrom(m.fd, m.ack, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("mark %s: %w", f, err)
		}
		b := m.ack[:n]
		for len(b) >= unix.NLMSG_HDRLEN {
			l := int(binary.NativeEndian.Uint32(b[0:]))
			typ := binary.NativeEndian.Uint16(b[4:])
			seq := binary.NativeEndian.Uint32(b[8:])
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				return fmt.Errorf("mark %s: truncated netlink answer", f)
			}
			if typ == unix.NLMSG_ERROR && seq == m.seq && l >= unix.NLMSG_HDRLEN+4 {
				if code := int32(binary.NativeEndian.Uint32(b[unix.NLMSG_HDRLEN:])); code != 0 {
					return fmt.Errorf("mark %s: %w", f, unix.Errno(-code))
				}
				return nil
			}
			b = b[min(nlmsgAlign(l), len(b)):]
		}
	}
}

// attrHdr starts an attribute (its length is set by attrEnd).
func attrHdr(b []byte, typ uint16) []byte {
	b = binary.NativeEndian.AppendUint16(b, 4)
	return binary.NativeEndian.AppendUint16(b, typ)
}

// attrEnd sets the length of the attribute that starts at off.
func attrEnd(b []byte, off int) []byte {
	binary.NativeEndian.PutUint16(b[off:], uint16(len(b)-off))
	return b
}

// attrBytes appends an attribute with data, padded to 4 bytes.
func attrBytes(b []byte, typ uint16, data []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(4+len(data)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
