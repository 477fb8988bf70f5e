package conntrack

import (
	"fmt"
	"net/netip"
	"os"
	"time"
)

// ResetMark is the ct mark bit that asks the ruleset to answer the next
// packet of a flow with a TCP reset (KERNEL-NOTES: `ct mark and 0x40000000 ==
// 0x40000000 tcp flags & rst == 0 reject with tcp reset`, in both directions).
const ResetMark uint32 = 0x40000000

// Conntrack TCP states as ctnetlink reports them (nf_conntrack_tcp.h).
const (
	tcpTimeWait = 7
	tcpClose    = 8
)

// Flow is one conntrack entry: the original direction (as the connection's
// first packet had it) and the reply direction (different under NAT).
type Flow struct {
	ID               uint32
	Proto            uint8
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	// Reply tuple: for a connection to the host its source is the local
	// address the socket is bound to.
	ReplySrc, ReplyDst         netip.Addr
	ReplySrcPort, ReplyDstPort uint16
	TCPState                   uint8 // 0 for other protocols
	// Unreplied is true when conntrack has seen no packet of the reply
	// direction (its status lacks IPS_SEEN_REPLY).
	Unreplied bool
	Mark      uint32
	Zone      uint16
	Start     time.Time // zero unless nf_conntrack_timestamp is on
}

// Is6 reports whether the flow is IPv6.
func (f Flow) Is6() bool { return f.Src.Is6() && !f.Src.Is4In6() }

// Open reports whether the flow is a session that counts: every tracked
// flow except TCP connections in TIME_WAIT or CLOSE (nf_conncount's
// already_closed) and ghosts.
func (f Flow) Open() bool {
	return f.Proto != 6 || (f.TCPState != tcpTimeWait && f.TCPState != tcpClose && !f.Ghost())
}

// Ghost reports a TCP flow that conntrack picked up mid-stream (past its
// handshake: ESTABLISHED to LAST_ACK) and that has never seen a reply: a
// segment that no SYN opened and nothing answered, such as a forged ACK
// toward an address that does not answer, or the last packets of a
// connection that ended while it was not tracked. No limit counts it (the
// compiled checks skip what AdoptMark marks, and the agent's counts skip
// it) until a reply shows it is a session. Conntrack keeps such a flow for
// nf_conntrack_tcp_timeout_unacknowledged (300 s).
func (f Flow) Ghost() bool {
	return f.Proto == 6 && f.Unreplied && f.TCPState >= tcpEstablished && f.TCPState <= tcpLastAck
}

// String renders the original tuple, e.g. "tcp 10.0.0.1:40000 -> 10.0.0.2:22".
func (f Flow) String() string {
	return fmt.Sprintf("%s %s -> %s", protoName(f.Proto),
		netip.AddrPortFrom(f.Src, f.SrcPort), netip.AddrPortFrom(f.Dst, f.DstPort))
}

func protoName(p uint8) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 132:
		return "sctp"
	case 1:
		return "icmp"
	case 58:
		return "icmpv6"
	}
	return fmt.Sprint(p)
}

// Table is the conntrack table as this package uses it: *Kernel is the real
// one, *Fake an in-memory one for unit tests.
type Table interface {
	Dump() ([]Flow, error)
	// SetMark sets the flow's ct mark to mark (the whole mark: ctnetlink
	// takes no mask here).
	SetMark(f Flow, mark uint32) error
}

// Kernel is the conntrack table of one network namespace.
type Kernel struct {
	mark    *marker // mark updates
	netnsFd int     // dumps open their own streaming socket
}

// Open connects to the conntrack table of the namespace that netnsFd refers
// to; 0 means the caller's namespace.
func Open(netnsFd int) (*Kernel, error) {
	m, err := openMarker(netnsFd)
	if err != nil {
		return nil, fmt.Errorf("open conntrack: %w", err)
	}
	return &Kernel{mark: m, netnsFd: netnsFd}, nil
}

// Close releases the netlink socket.
func (k *Kernel) Close() error { return k.mark.close() }

// Dump returns every flow of the namespace, IPv4 and IPv6.
func (k *Kernel) Dump() ([]Flow, error) { return dumpFlows(k.netnsFd, 0, 0) }

// DumpMarked returns the flows whose mark has all bits of mask set; the
// kernel does the filtering.
func (k *Kernel) DumpMarked(mask uint32) ([]Flow, error) { return dumpFlows(k.netnsFd, mask, mask) }

// SetMark sets the flow's ct mark.
//
// Why only the tuple, the zone and the mark: resending a dumped flow's
// status, timeout or protoinfo would change them (KERNEL-NOTES); mark.go
// says why not through ti-mo/conntrack.
func (k *Kernel) SetMark(f Flow, mark uint32) error { return k.mark.setMark(f, mark) }

// MarkReset sets ResetMark on each flow (keeping its other mark bits), so
// that the ruleset resets it on its next packet. It goes on after an error
// (a flow may end meanwhile) and returns the first one.
func MarkReset(t Table, flows []Flow) error {
	var first error
	for _, f := range flows {
		if f.Mark&ResetMark != 0 {
			continue
		}
		if err := t.SetMark(f, f.Mark|ResetMark); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// EnableTimestamps turns on nf_conntrack_timestamp in the namespace netnsFd
// (0: the caller's), so that flows created from then on carry their start
// time and "newest first" is exact; without it, the flows of one key are
// ordered by tuple. It costs 16 bytes per conntrack entry.
func EnableTimestamps(netnsFd int) error {
	write := func() error {
		return os.WriteFile("/proc/sys/net/netfilter/nf_conntrack_timestamp", []byte("1\n"), 0o644)
	}
	var err error
	if netnsFd == 0 {
		err = write()
	} else {
		err = inNamespace(netnsFd, write)
	}
	if err != nil {
		return fmt.Errorf("enable conntrack timestamps: %w", err)
	}
	return nil
}
