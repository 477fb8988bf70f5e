package conntrack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Why a dump of our own: ti-mo/conntrack (and mdlayher/netlink's Receive)
// collect every message of a dump before decoding it into large Flow values
// — about 390 MB allocated and 255 MB peak RSS for 100k entries (see
// BENCHMARKS.md, `show access-list sessions`). Reading the socket in a loop
// and decoding only the attributes we use into the compact Flow keeps the
// peak near the size of the result.

// ctnetlink constants (linux/netfilter/nfnetlink_conntrack.h).
const (
	ctGet          = 1<<8 | 1 // NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_GET
	ctaTupleOrig   = 1
	ctaTupleReply  = 2
	ctaStatus      = 3
	ctaProtoinfo   = 4
	ctaMark        = 8
	ctaID          = 12
	ctaZone        = 18
	ctaTimestamp   = 20
	ctaMarkMask    = 21
	ctaTupleIP     = 1
	ctaTupleProto  = 2
	ctaIPv4Src     = 1
	ctaIPv4Dst     = 2
	ctaIPv6Src     = 3
	ctaIPv6Dst     = 4
	ctaProtoNum    = 1
	ctaProtoSrc    = 2
	ctaProtoDst    = 3
	ctaInfoTCP     = 1
	ipsSeenReply   = 1 << 1 // IPS_SEEN_REPLY of CTA_STATUS
	ctaInfoTCPStat = 1
	ctaTSStart     = 1
)

// inNamespace runs f on a thread switched into the namespace netnsFd.
// Sockets f opens stay in that namespace; /proc/sys is the namespace's.
func inNamespace(netnsFd int, f func() error) error {
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer unix.Close(orig)
	if err := unix.Setns(netnsFd, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := f()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		// Why stay locked: a thread left in another namespace must not
		// run other goroutines; the runtime discards it when we return.
		return err
	}
	runtime.UnlockOSThread()
	return ferr
}

// netlinkSocket opens a NETLINK_NETFILTER socket inside the namespace.
func netlinkSocket(netnsFd int) (int, error) {
	return netlinkSocketOf(netnsFd, unix.NETLINK_NETFILTER)
}

// netlinkSocketOf opens a netlink socket of protocol proto inside the
// namespace.
func netlinkSocketOf(netnsFd, proto int) (int, error) {
	open := func() (int, error) {
		return unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	}
	if netnsFd == 0 {
		return open()
	}
	fd := -1
	err := inNamespace(netnsFd, func() error {
		var err error
		fd, err = open()
		return err
	})
	if err != nil && fd >= 0 {
		unix.Close(fd)
		fd = -1
	}
	return fd, err
}

// dumpFlows streams a conntrack dump (both families) and decodes it into
// Flows. With mask != 0 the kernel returns only flows whose mark&mask equals
// mark.
func dumpFlows(netnsFd int, mark, mask uint32) ([]Flow, error) {
	var out []Flow
	if mask == 0 {
		// Sized for the whole table: growing by appends would leave the
		// earlier arrays to the collector, twice the memory at the peak.
		out = make([]Flow, 0, tableSize(netnsFd)*9/8)
	}
	err := dumpEach(netnsFd, mark, mask, func(f Flow) { out = append(out, f) })
	return out, err
}

// dumpEach streams a conntrack dump as dumpFlows does, handing each flow to
// fn as its message is decoded: nothing of the dump is kept but what fn
// keeps (the session Index keeps compact records).
func dumpEach(netnsFd int, mark, mask uint32, fn func(Flow)) error {
	fd, err := netlinkSocket(netnsFd)
	if err != nil {
		return fmt.Errorf("open ctnetlink: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20); err != nil {
		return fmt.Errorf("ctnetlink receive buffer: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("bind ctnetlink: %w", err)
	}
	if err := sendDump(fd, mark, mask); err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("dump conntrack: %w", err)
		}
		done, err := decodeBatch(buf[:n], func(_ uint16, f Flow) { fn(f) })
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// tableSize is how many entries the namespace's conntrack table holds
// (net.netfilter.nf_conntrack_count); 0 when it cannot be read.
func tableSize(netnsFd int) int {
	var n int
	read := func() error {
		b, err := os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_count")
		if err == nil {
			n, err = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		return err
	}
	if netnsFd == 0 {
		read()
	} else {
		inNamespace(netnsFd, read)
	}
	return max(n, 0)
}

func sendDump(fd int, mark, mask uint32) error {
	var attrs []byte
	if mask != 0 {
		ae := netlink.NewAttributeEncoder()
		ae.ByteOrder = binary.BigEndian
		ae.Uint32(ctaMark, mark)
		ae.Uint32(ctaMarkMask, mask)
		b, err := ae.Encode()
		if err != nil {
			return err
		}
		attrs = b
	}
	msg := make([]byte, 16+4, 16+4+len(attrs))
	msg = append(msg, attrs...)
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], ctGet)
	binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(msg[8:], 1) // seq
	msg[16] = unix.AF_UNSPEC                  // nfgenmsg: both families
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("request conntrack dump: %w", err)
	}
	return nil
}

// decodeBatch decodes the netlink messages of one read, handing each flow
// to fn with its message type; done is true at the end of the dump.
func decodeBatch(b []byte, fn func(typ uint16, f Flow)) (done bool, err error) {
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b[0:]))
		typ := binary.NativeEndian.Uint16(b[4:])
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return false, errors.New("dump conntrack: truncated netlink message")
		}
		body := b[unix.NLMSG_HDRLEN:l]
		switch typ {
		case unix.NLMSG_DONE:
			return true, nil
		case unix.NLMSG_ERROR:
			if len(body) >= 4 {
				if code := int32(binary.NativeEndian.Uint32(body)); code != 0 {
					return false, fmt.Errorf("dump conntrack: %w", unix.Errno(-code))
				}
			}
			return true, nil
		default:
			if len(body) > 4 {
				f, err := decodeFlow(body[4:]) // after struct nfgenmsg
				if err != nil {
					return false, err
				}
				fn(typ, f)
			}
		}
		b = b[min(nlmsgAlign(l), len(b)):]
	}
	return false, nil
}

func nlmsgAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

// attrs iterates over netlink attributes (struct nlattr: u16 len, u16 type,
// data, padded to 4) without allocating; nested and byte-order flags are
// masked off the type.
func attrs(b []byte, fn func(typ uint16, data []byte)) error {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b[0:]))
		typ := binary.NativeEndian.Uint16(b[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if l < 4 || l > len(b) {
			return errors.New("decode conntrack flow: truncated attribute")
		}
		fn(typ, b[4:l])
		b = b[min(nlmsgAlign(l), len(b)):]
	}
	return nil
}

func decodeFlow(b []byte) (Flow, error) {
	var f Flow
	var bad error
	note := func(err error) {
		if err != nil && bad == nil {
			bad = err
		}
	}
	note(attrs(b, func(typ uint16, d []byte) {
		switch typ {
		case ctaTupleOrig:
			note(decodeTuple(d, &f.Proto, &f.Src, &f.Dst, &f.SrcPort, &f.DstPort))
		case ctaTupleReply:
			var p uint8
			note(decodeTuple(d, &p, &f.ReplySrc, &f.ReplyDst, &f.ReplySrcPort, &f.ReplyDstPort))
		case ctaProtoinfo:
			note(attrs(d, func(typ uint16, d []byte) {
				if typ != ctaInfoTCP {
					return
				}
				note(attrs(d, func(typ uint16, d []byte) {
					if typ == ctaInfoTCPStat && len(d) >= 1 {
						f.TCPState = d[0]
					}
				}))
			}))
		case ctaStatus:
			if len(d) >= 4 {
				f.Unreplied = binary.BigEndian.Uint32(d)&ipsSeenReply == 0
			}
		case ctaMark:
			if len(d) >= 4 {
				f.Mark = binary.BigEndian.Uint32(d)
			}
		case ctaID:
			if len(d) >= 4 {
				f.ID = binary.BigEndian.Uint32(d)
			}
		case ctaZone:
			if len(d) >= 2 {
				f.Zone = binary.BigEndian.Uint16(d)
			}
		case ctaTimestamp:
			note(attrs(d, func(typ uint16, d []byte) {
				if typ == ctaTSStart && len(d) >= 8 {
					f.Start = time.Unix(0, int64(binary.BigEndian.Uint64(d)))
				}
			}))
		}
	}))
	return f, bad
}

func decodeTuple(b []byte, proto *uint8, src, dst *netip.Addr, sport, dport *uint16) error {
	var bad error
	err := attrs(b, func(typ uint16, d []byte) {
		switch typ {
		case ctaTupleIP:
			bad = attrs(d, func(typ uint16, d []byte) {
				a, _ := netip.AddrFromSlice(d)
				switch typ {
				case ctaIPv4Src, ctaIPv6Src:
					*src = a
				case ctaIPv4Dst, ctaIPv6Dst:
					*dst = a
				}
			})
		case ctaTupleProto:
			bad = attrs(d, func(typ uint16, d []byte) {
				switch {
				case typ == ctaProtoNum && len(d) >= 1:
					*proto = d[0]
				case typ == ctaProtoSrc && len(d) >= 2:
					*sport = binary.BigEndian.Uint16(d)
				case typ == ctaProtoDst && len(d) >= 2:
					*dport = binary.BigEndian.Uint16(d)
				}
			})
		}
	})
	if err != nil {
		return err
	}
	return bad
}
