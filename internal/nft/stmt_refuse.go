package nft

import (
	"fmt"
	"strconv"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Statements of `refuse message` (a mark set by the decision, matched by
// the redirect) and of `log` through NFLOG.

// MarkSet sets the packet mark: `meta mark set 0x534c0001`.
type MarkSet struct{ Mark uint32 }

// String renders the statement as nft lists it.
func (s *MarkSet) String() string { return fmt.Sprintf("meta mark set 0x%08x", s.Mark) }

// Exprs implements Stmt: the mark is host-endian.
func (s *MarkSet) Exprs() []expr.Any {
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: binaryutil.NativeEndian.PutUint32(s.Mark)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	}
}

// MarkEq matches the packet mark: `meta mark 0x534c0001`.
type MarkEq struct {
	Mark uint32
	Neq  bool // `meta mark != M`
}

// String renders the statement as nft lists it.
func (s *MarkEq) String() string {
	if s.Neq {
		return fmt.Sprintf("meta mark != 0x%08x", s.Mark)
	}
	return fmt.Sprintf("meta mark 0x%08x", s.Mark)
}

// Exprs implements Stmt.
func (s *MarkEq) Exprs() []expr.Any {
	out := metaEq(expr.MetaKeyMARK, binaryutil.NativeEndian.PutUint32(s.Mark))
	if s.Neq {
		out[1].(*expr.Cmp).Op = expr.CmpOpNeq
	}
	return out
}

// SocketMarkNeq matches a packet whose local socket (the listener a first
// packet reaches) does not carry the mark: `socket mark != 0x534c0200`. A
// packet that finds no socket matches nothing (the host resets it anyway).
type SocketMarkNeq struct{ Mark uint32 }

// String renders the statement as nft lists it.
func (s *SocketMarkNeq) String() string { return fmt.Sprintf("socket mark != 0x%08x", s.Mark) }

// Exprs implements Stmt.
func (s *SocketMarkNeq) Exprs() []expr.Any {
	return []expr.Any{
		&expr.Socket{Key: expr.SocketKeyMark, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(s.Mark)},
	}
}

// Redirect sends the connection to a local port of the host (nat chains
// only; the rule must have matched the transport protocol):
// `redirect to :4421`.
type Redirect struct{ Port uint16 }

// String renders the statement as nft lists it.
func (s *Redirect) String() string { return "redirect to :" + strconv.Itoa(int(s.Port)) }

// Exprs implements Stmt. The kernel reports the maximum port register as
// well when only the minimum was given, so both are set here to compare
// equal with what it dumps.
func (s *Redirect) Exprs() []expr.Any {
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(s.Port)},
		&expr.Redir{RegisterProtoMin: 1, RegisterProtoMax: 1, Flags: unix.NF_NAT_RANGE_PROTO_SPECIFIED},
	}
}

// LogGroup sends the packet to an NFLOG netlink group with a prefix:
// `log prefix "connlimit acl=check dir=in seq=10 " group 2`. Unlike the
// kernel log, NFLOG reaches a listener in a non-initial network namespace.
type LogGroup struct {
	Prefix string
	Group  uint16
}

// String renders the statement as nft lists it.
func (s *LogGroup) String() string {
	return "log prefix " + quote(s.Prefix) + " group " + strconv.Itoa(int(s.Group))
}

// Exprs implements Stmt.
func (s *LogGroup) Exprs() []expr.Any {
	return []expr.Any{&expr.Log{
		Key:   1<<unix.NFTA_LOG_PREFIX | 1<<unix.NFTA_LOG_GROUP,
		Group: s.Group,
		Data:  []byte(s.Prefix),
	}}
}

// RateUnder matches while packets come no faster than Rate per Per (a
// token bucket in the rule): `limit rate 10/second burst 20 packets`.
type RateUnder struct{ RateOver }

// String renders the statement as nft lists it.
func (s *RateUnder) String() string {
	out := "limit rate " + strconv.Itoa(s.Rate) + "/" + periodName(s.Per)
	if b := s.burst(); b != DefaultBurst {
		out += " burst " + strconv.Itoa(b) + " packets"
	}
	return out
}

// Exprs implements Stmt.
func (s *RateUnder) Exprs() []expr.Any {
	return []expr.Any{&expr.Limit{Type: expr.LimitTypePkts, Rate: uint64(s.Rate),
		Unit: periodUnit(s.Per), Burst: uint32(s.burst())}}
}
