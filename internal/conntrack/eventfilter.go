package conntrack

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The TCP states an update may carry that tell the index nothing
// (nf_conntrack_tcp.h): a flow gets to ESTABLISHED..LAST_ACK only from
// another open state, and is open there as before.
const (
	tcpEstablished = 3
	tcpLastAck     = 6
)

// eventFilter is the socket filter (classic BPF) of the event socket: it
// passes what the index reads and drops, in the kernel, the update events
// that cannot change a record. A TCP connection sends seven events (new,
// SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE_WAIT or LAST_ACK, TIME_WAIT,
// destroy); the index needs four, and each dropped one costs neither a
// wake-up, a copy nor room in the socket's queue (an overflow is a full
// dump).
//
// It passes:
//   - new and destroy events;
//   - an update with a mark (ctnetlink puts the mark in every event whose
//     mark changed or is not 0: without one, the mark is 0 and was);
//   - an update that carries a TCP state outside ESTABLISHED..LAST_ACK:
//     the flow stops counting (TIME_WAIT, CLOSE) or may count again (an
//     entry in CLOSE reopened in place goes to SYN_SENT, or to SYN_RECV
//     when the kernel gets back in sync on a SYN/ACK to a SYN it
//     ignored: nf_conntrack_proto_tcp's only ways back);
//   - an update it cannot read (no original tuple found: a paged skb, on
//     which the kernel's attribute lookups find nothing), and protoinfo of
//     another protocol.
//
// It drops an update without a mark that carries no state (the state did
// not change) or one of ESTABLISHED..LAST_ACK. What the index loses is
// only that such an update would have ended a record's silence
// (flowRec.silent): a flow first seen in a dump (after an overflow) stays
// watched, and dumped for, until its SYN_RECV, TIME_WAIT or CLOSE, a mark
// or its destroy arrives.
//
// Why the attribute lookups (SKF_AD_NLATTR, SKF_AD_NLATTR_NEST): the
// kernel finds an attribute by type from an offset (A) in the message,
// so the filter need not know the order of attributes, which differs
// between kernels. Header fields are host order, and BPF loads them as
// network order: the constants are swapped to match (hostBE16).
func eventFilter() ([]bpf.RawInstruction, error) {
	const (
		attrs  = unix.NLMSG_HDRLEN + 4 // after struct nfgenmsg
		accept = 0xffffffff            // keep the whole message
	)
	// The labels are counted back from the end: pass is the last
	// instruction, drop the one before.
	prog := []bpf.Instruction{
		/* 0 */ bpf.LoadAbsolute{Off: 4, Size: 2}, // nlmsg_type
		/* 1 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: hostBE16(ctMsgDelete), SkipTrue: 25},
		/* 2 */ bpf.LoadAbsolute{Off: 6, Size: 2}, // nlmsg_flags: a new event has NLM_F_CREATE
		/* 3 */ bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: hostBE16(unix.NLM_F_CREATE), SkipTrue: 23},
		/* 4 */ bpf.LoadConstant{Dst: bpf.RegX, Val: ctaMark},
		/* 5 */ bpf.LoadConstant{Dst: bpf.RegA, Val: attrs},
		/* 6 */ bpf.LoadExtension{Num: bpf.ExtNetlinkAttr},
		/* 7 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0, SkipTrue: 19},
		/* 8 */ bpf.LoadConstant{Dst: bpf.RegX, Val: ctaTupleOrig},
		/* 9 */ bpf.LoadConstant{Dst: bpf.RegA, Val: attrs},
		/* 10 */ bpf.LoadExtension{Num: bpf.ExtNetlinkAttr},
		/* 11 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0, SkipTrue: 15},
		/* 12 */ bpf.LoadConstant{Dst: bpf.RegX, Val: ctaProtoinfo},
		/* 13 */ bpf.LoadConstant{Dst: bpf.RegA, Val: attrs},
		/* 14 */ bpf.LoadExtension{Num: bpf.ExtNetlinkAttr},
		/* 15 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0, SkipTrue: 10},
		/* 16 */ bpf.LoadConstant{Dst: bpf.RegX, Val: ctaInfoTCP}, // A: the protoinfo's offset
		/* 17 */ bpf.LoadExtension{Num: bpf.ExtNetlinkAttrNested},
		/* 18 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0, SkipTrue: 8},
		/* 19 */ bpf.LoadConstant{Dst: bpf.RegX, Val: ctaInfoTCPStat},
		/* 20 */ bpf.LoadExtension{Num: bpf.ExtNetlinkAttrNested},
		/* 21 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0, SkipTrue: 5},
		/* 22 */ bpf.TAX{},
		/* 23 */ bpf.LoadIndirect{Off: 4, Size: 1}, // the state, after its attribute header
		/* 24 */ bpf.JumpIf{Cond: bpf.JumpLessThan, Val: tcpEstablished, SkipTrue: 2},
		/* 25 */ bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: tcpLastAck, SkipTrue: 1},
		/* 26 drop */ bpf.RetConstant{Val: 0},
		/* 27 pass */ bpf.RetConstant{Val: accept},
	}
	return bpf.Assemble(prog)
}

// hostBE16 is v as a BPF half-word load of its host-order bytes reads it.
func hostBE16(v uint16) uint32 {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], v)
	return uint32(binary.BigEndian.Uint16(b[:]))
}

// attachEventFilter installs eventFilter on the event socket fd.
func attachEventFilter(fd int) error {
	raw, err := eventFilter()
	if err != nil {
		return fmt.Errorf("assemble the conntrack event filter: %w", err)
	}
	prog := unix.SockFprog{Len: uint16(len(raw)), Filter: (*unix.SockFilter)(unsafe.Pointer(&raw[0]))}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
		return fmt.Errorf("attach the conntrack event filter: %w", err)
	}
	return nil
}
