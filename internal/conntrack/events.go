package conntrack

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ctnetlink event groups and message types
// (linux/netfilter/nfnetlink_compat.h, nfnetlink_conntrack.h).
const (
	nfnlgrpCtNew     = 1
	nfnlgrpCtUpdate  = 2
	nfnlgrpCtDestroy = 3
	ctMsgDelete      = 1<<8 | 2 // NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_DELETE
)

// eventRcvBuf is the event socket's receive buffer. Each event is its own
// skb of about 1 KiB truesize, so this holds some 16k events between two
// reads; more is an overflow (ENOBUFS) and the Index dumps again.
const eventRcvBuf = 16 << 20

// events is a ctnetlink socket subscribed to the new, update and destroy
// events of one namespace, read without blocking.
//
// Why updates: an update carries the TCP state changes (an entry in
// TIME_WAIT or CLOSE no longer counts, as for nf_conncount) and the mark
// changes (OldMark). The kernel cannot be asked for some kinds only (one
// group has them all), so a socket filter drops the rest (eventFilter).
type events struct {
	fd     int
	joined [3]bool // of nfnlgrpCtNew, Update, Destroy (listen)
	buf    []byte  // eventBatch slots of eventSlot bytes
	iov    []unix.Iovec
	hdr    []mmsghdr // one per slot, for recvmmsg
}

// Each event is one datagram, so a plain read returns one event per
// system call: drain reads up to eventBatch at once (recvmmsg), each into
// a slot of eventSlot bytes (an event is a few hundred).
const (
	eventBatch = 64
	eventSlot  = 4 << 10
)

// mmsghdr is struct mmsghdr (linux/socket.h), which x/sys/unix lacks.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

func newEvents(fd int) *events {
	e := &events{fd: fd, buf: make([]byte, eventBatch*eventSlot),
		iov: make([]unix.Iovec, eventBatch), hdr: make([]mmsghdr, eventBatch)}
	for i := range e.hdr {
		e.iov[i].Base = &e.buf[i*eventSlot]
		e.iov[i].SetLen(eventSlot)
		e.hdr[i].hdr.Iov = &e.iov[i]
		e.hdr[i].hdr.SetIovlen(1)
	}
	return e
}

// openEvents subscribes to the conntrack events of the namespace netnsFd
// (0: the caller's). It fails when the namespace sends no events
// (net.netfilter.nf_conntrack_events = 0).
func openEvents(netnsFd int) (*events, error) {
	if on, err := eventsEnabled(netnsFd); err == nil && !on {
		return nil, errors.New("conntrack events are off (net.netfilter.nf_conntrack_events = 0)")
	}
	fd, err := netlinkSocket(netnsFd)
	if err != nil {
		return nil, fmt.Errorf("open ctnetlink events: %w", err)
	}
	// Why force: the default rmem_max (4 MiB here) is a few thousand events.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, eventRcvBuf); err != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, eventRcvBuf)
	}
	if err := attachEventFilter(fd); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := bindEvents(fd); err != nil {
		unix.Close(fd)
		return nil, err
	}
	e := newEvents(fd)
	e.joined = [3]bool{true, true, true}
	return e, nil
}

// bindEvents subscribes fd to the new, update and destroy groups.
func bindEvents(fd int) error {
	groups := uint32(1<<(nfnlgrpCtNew-1) | 1<<(nfnlgrpCtUpdate-1) | 1<<(nfnlgrpCtDestroy-1))
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		return fmt.Errorf("subscribe to conntrack events: %w", err)
	}
	return nil
}

// eventsEnabled reads net.netfilter.nf_conntrack_events in the namespace
// (1 and 2 deliver events to listeners).
func eventsEnabled(netnsFd int) (bool, error) {
	var b []byte
	read := func() (err error) {
		b, err = os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_events")
		return err
	}
	var err error
	if netnsFd == 0 {
		err = read()
	} else {
		err = inNamespace(netnsFd, read)
	}
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(string(b)) != "0", nil
}

// drain reads every event queued now, handing each to fn (destroy true
// for a destroy event), and returns without waiting. lost reports that
// the kernel dropped events since the last read (the socket overflowed):
// what the caller built from events is no longer the table.
func (e *events) drain(fn func(destroy bool, f Flow)) (lost bool, err error) {
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(e.fd), uintptr(unsafe.Pointer(&e.hdr[0])),
			uintptr(len(e.hdr)), unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
		case unix.EAGAIN:
			return lost, nil
		case unix.EINTR:
			continue
		case unix.ENOBUFS:
			lost = true
			continue
		default:
			return lost, fmt.Errorf("read conntrack events: %w", errno)
		}
		for i := range int(n) {
			h := &e.hdr[i]
			if h.hdr.Flags&unix.MSG_TRUNC != 0 {
				lost = true // larger than a slot: read as lost, the index dumps again
				continue
			}
			b := e.buf[i*eventSlot : i*eventSlot+int(h.n)]
			if _, err := decodeBatch(b, func(typ uint16, f Flow) { fn(typ == ctMsgDelete, f) }); err != nil {
				return true, err // the rest of the batch is not applied: lost
			}
		}
		if int(n) < len(e.hdr) {
			// The queue was shorter than a batch: empty now. Why SO_ERROR:
			// recvmmsg returns the datagrams it read and keeps an error met
			// after them (an overflow) for the next call, which would
			// report it only at the next drain; reading on to EAGAIN
			// instead would hold the index's lock through a flood.
			// Reading SO_ERROR clears it: any other error is reported here.
			switch soErr, err := unix.GetsockoptInt(e.fd, unix.SOL_SOCKET, unix.SO_ERROR); {
			case err != nil:
				return lost, fmt.Errorf("read conntrack events: %w", err)
			case soErr == int(unix.ENOBUFS):
				lost = true
			case soErr != 0:
				return lost, fmt.Errorf("read conntrack events: %w", unix.Errno(soErr))
			}
			return lost, nil
		}
	}
}

// listen joins (on) or leaves the new, update and destroy groups. With
// no member in a group the kernel builds none of its events, and each
// costs it an allocation and a message as connections come and go.
//
// Why per group: after a failure half way, a retry changes only the
// groups still in the other state (the kernel counts a socket's
// memberships, and a group left twice or joined twice would unbalance
// the count that decides whether events are built at all).
func (e *events) listen(on bool) error {
	opt := unix.NETLINK_DROP_MEMBERSHIP
	if on {
		opt = unix.NETLINK_ADD_MEMBERSHIP
	}
	for i, g := range []int{nfnlgrpCtNew, nfnlgrpCtUpdate, nfnlgrpCtDestroy} {
		if e.joined[i] == on {
			continue
		}
		if err := unix.SetsockoptInt(e.fd, unix.SOL_NETLINK, opt, g); err != nil {
			if on {
				return fmt.Errorf("subscribe to conntrack events: %w", err)
			}
			return fmt.Errorf("unsubscribe from conntrack events: %w", err)
		}
		e.joined[i] = on
	}
	return nil
}

// wait blocks until events are queued or ms milliseconds have passed.
func (e *events) wait(ms int) error {
	fds := []unix.PollFd{{Fd: int32(e.fd), Events: unix.POLLIN}}
	_, err := unix.Poll(fds, ms)
	if errors.Is(err, unix.EINTR) {
		return nil
	}
	return err
}

// joinedAll reports whether every group is joined (on) or left.
func (e *events) joinedAll(on bool) bool {
	return e.joined == [3]bool{on, on, on}
}

func (e *events) close() error { return unix.Close(e.fd) }
