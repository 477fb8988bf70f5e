// Package nflog reads packets that nftables `log group N` rules send to
// userspace (nfnetlink_log), over github.com/mdlayher/netlink and
// github.com/ti-mo/netfilter. Unlike the kernel log, NFLOG delivers in every
// network namespace: the listener binds the group in its own namespace.
//
//	r, err := nflog.Listen(nflog.Config{Group: 1})
//	for { ev, err := r.Read(); ... }
package nflog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/ti-mo/netfilter"
	"golang.org/x/sys/unix"
)

// nfnetlink_log constants (include/uapi/linux/netfilter/nfnetlink_log.h).
const (
	msgPacket = 0 // NFULNL_MSG_PACKET
	msgConfig = 1 // NFULNL_MSG_CONFIG

	cfgCmd     = 1 // NFULA_CFG_CMD
	cfgMode    = 2 // NFULA_CFG_MODE
	cfgTimeout = 4 // NFULA_CFG_TIMEOUT, in 1/100 s (3 is NFULA_CFG_NLBUFSIZ)
	cfgQThresh = 5 // NFULA_CFG_QTHRESH

	cmdBind = 1 // NFULNL_CFG_CMD_BIND

	copyPacket = 2 // NFULNL_COPY_PACKET

	attrPacketHdr = 1  // NFULA_PACKET_HDR
	attrMark      = 2  // NFULA_MARK
	attrInDev     = 4  // NFULA_IFINDEX_INDEV
	attrOutDev    = 5  // NFULA_IFINDEX_OUTDEV
	attrPayload   = 9  // NFULA_PAYLOAD
	attrPrefix    = 10 // NFULA_PREFIX
)

// Config configures a listener.
type Config struct {
	Group uint16 // the `log group N` of the rules
	// CopyRange is how many bytes of each packet the kernel copies; 0
	// means DefaultCopyRange (enough for the IP and transport headers).
	CopyRange uint32
	// NetNS is a network namespace file descriptor; 0 means the calling
	// thread's namespace.
	NetNS int
}

// DefaultCopyRange copies the IPv6 header and a TCP header with options.
const DefaultCopyRange = 128

// Event is one logged packet.
type Event struct {
	Time     time.Time // when it was read
	Prefix   string    // the rule's log prefix, trailing spaces removed
	Mark     uint32
	InDev    uint32 // interface indices, 0 when none
	OutDev   uint32
	Proto    uint8 // transport protocol (6 tcp, 17 udp, ...)
	Src, Dst netip.Addr
	SPort    uint16 // for TCP, UDP and SCTP
	DPort    uint16
}

// Reader receives the events of one group. Read and Close may be called
// from different goroutines.
type Reader struct {
	conn  *netfilter.Conn
	group uint16

	mu      sync.Mutex
	pending []Event
}

// Listen binds cfg.Group in the namespace and asks the kernel for the
// packets' headers. Binding needs CAP_NET_ADMIN; a group that another
// socket has bound already is refused by the kernel (EBUSY).
func Listen(cfg Config) (*Reader, error) {
	if cfg.CopyRange == 0 {
		cfg.CopyRange = DefaultCopyRange
	}
	c, err := netfilter.Dial(&netlink.Config{NetNS: cfg.NetNS})
	if err != nil {
		return nil, fmt.Errorf("open nfnetlink_log: %w", err)
	}
	r := &Reader{conn: c, group: cfg.Group}
	// Why a big receive buffer: the kernel drops what does not fit
	// (ENOBUFS on the next read), and a burst of refusals arrives at once.
	_ = c.SetReadBuffer(1 << 20)
	if err := r.config(netfilter.Attribute{Type: cfgCmd, Data: []byte{cmdBind}}); err != nil {
		c.Close()
		return nil, fmt.Errorf("bind nflog group %d: %w", cfg.Group, err)
	}
	mode := binary.BigEndian.AppendUint32(nil, cfg.CopyRange)
	mode = append(mode, copyPacket, 0)
	// Why: the kernel batches up to 100 packets or 1 s by default; a
	// batch of 64 or 50 ms keeps events prompt and floods cheap.
	for _, a := range []netfilter.Attribute{
		{Type: cfgMode, Data: mode},
		{Type: cfgTimeout, Data: binary.BigEndian.AppendUint32(nil, 5)},
		{Type: cfgQThresh, Data: binary.BigEndian.AppendUint32(nil, 64)},
	} {
		if err := r.config(a); err != nil {
			c.Close()
			return nil, fmt.Errorf("configure nflog group %d: %w", cfg.Group, err)
		}
	}
	return r, nil
}

// config sends one NFULNL_MSG_CONFIG for the group and waits for the ack.
func (r *Reader) config(a netfilter.Attribute) error {
	msg, err := netfilter.MarshalNetlink(netfilter.Header{
		SubsystemID: netfilter.NFSubsysULOG,
		MessageType: msgConfig,
		Family:      netfilter.ProtoUnspec,
		ResourceID:  r.group,
		Flags:       netlink.Request | netlink.Acknowledge,
	}, []netfilter.Attribute{a})
	if err != nil {
		return err
	}
	_, err = r.conn.Query(msg)
	return err
}

// Read returns the next event; it blocks until one comes or the Reader is
// closed. Lost events (the socket buffer overflowed) are an error wrapping
// ErrLost, after which reading goes on.
func (r *Reader) Read() (Event, error) {
	for {
		r.mu.Lock()
		if len(r.pending) > 0 {
			ev := r.pending[0]
			r.pending = r.pending[1:]
			r.mu.Unlock()
			return ev, nil
		}
		r.mu.Unlock()
		msgs, err := r.conn.Receive()
		if err != nil {
			if errors.Is(err, unix.ENOBUFS) {
				return Event{}, fmt.Errorf("%w: %w", ErrLost, err)
			}
			return Event{}, err
		}
		now := time.Now()
		var evs []Event
		for _, m := range msgs {
			if ev, ok := decode(m); ok {
				ev.Time = now
				evs = append(evs, ev)
			}
		}
		r.mu.Lock()
		r.pending = append(r.pending, evs...)
		r.mu.Unlock()
	}
}

// ErrLost marks a Read error after which some events were lost.
var ErrLost = errors.New("nflog events lost")

// Close unbinds the group and closes the socket; a blocked Read returns.
func (r *Reader) Close() error {
	return r.conn.Close()
}

// decode reads one NFULNL_MSG_PACKET.
func decode(m netlink.Message) (Event, bool) {
	h, attrs, err := netfilter.UnmarshalNetlink(m)
	if err != nil || h.SubsystemID != netfilter.NFSubsysULOG || h.MessageType != msgPacket {
		return Event{}, false
	}
	var ev Event
	var payload []byte
	for _, a := range attrs {
		switch a.Type {
		case attrPrefix:
			ev.Prefix = strings.TrimRight(strings.TrimRight(string(a.Data), "\x00"), " ")
		case attrMark:
			ev.Mark = be32(a.Data)
		case attrInDev:
			ev.InDev = be32(a.Data)
		case attrOutDev:
			ev.OutDev = be32(a.Data)
		case attrPayload:
			payload = a.Data
		}
	}
	ParsePacket(payload, &ev)
	return ev, true
}

func be32(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

// ParsePacket fills in the addresses, protocol and ports of an IPv4 or
// IPv6 packet (network header first, as NFLOG copies it). What is cut off
// or not understood stays zero.
func ParsePacket(p []byte, ev *Event) {
	if len(p) < 1 {
		return
	}
	var l4 []byte
	switch p[0] >> 4 {
	case 4:
		if len(p) < 20 {
			return
		}
		ihl := int(p[0]&0x0f) * 4
		ev.Proto = p[9]
		ev.Src = netip.AddrFrom4([4]byte(p[12:16]))
		ev.Dst = netip.AddrFrom4([4]byte(p[16:20]))
		if binary.BigEndian.Uint16(p[6:8])&0x1fff != 0 || ihl < 20 || len(p) < ihl {
			return // a later fragment, or a bad header: no ports
		}
		l4 = p[ihl:]
	case 6:
		if len(p) < 40 {
			return
		}
		ev.Proto = p[6] // extension headers are not followed
		ev.Src = netip.AddrFrom16([16]byte(p[8:24]))
		ev.Dst = netip.AddrFrom16([16]byte(p[24:40]))
		l4 = p[40:]
	default:
		return
	}
	switch ev.Proto {
	case unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_SCTP:
		if len(l4) >= 4 {
			ev.SPort = binary.BigEndian.Uint16(l4[0:2])
			ev.DPort = binary.BigEndian.Uint16(l4[2:4])
		}
	}
}
