package nft

import (
	"fmt"
	"strconv"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/slxsh/slxsh/internal/acl"
)

// Statements for entry options beyond connlimit (`rate`, `uid`; `log` is
// LogGroup in stmt_refuse.go).

// DefaultBurst is the burst nft gives a `limit` that names none; `nft list`
// omits it.
const DefaultBurst = 5

// RateOver matches while new connections come faster than Rate per Per:
// `limit rate over 10/second burst 20 packets`.
type RateOver struct {
	Rate  int
	Per   acl.Period
	Burst int // 0 means DefaultBurst
}

// String renders the statement as nft lists it.
func (s *RateOver) String() string {
	out := "limit rate over " + strconv.Itoa(s.Rate) + "/" + periodName(s.Per)
	if b := s.burst(); b != DefaultBurst {
		out += " burst " + strconv.Itoa(b) + " packets"
	}
	return out
}

func (s *RateOver) burst() int {
	if s.Burst == 0 {
		return DefaultBurst
	}
	return s.Burst
}

// Exprs implements Stmt.
func (s *RateOver) Exprs() []expr.Any {
	return []expr.Any{&expr.Limit{Type: expr.LimitTypePkts, Rate: uint64(s.Rate), Over: true,
		Unit: periodUnit(s.Per), Burst: uint32(s.burst())}}
}

// periodWeek is the unit of the refill of a one-day fixed window (nft's
// `/week`); acl has no week period.
const periodWeek = acl.Day + 1

func periodName(p acl.Period) string {
	return [...]string{"second", "minute", "hour", "day", "week"}[p]
}

func periodUnit(p acl.Period) expr.LimitTime {
	return [...]expr.LimitTime{expr.LimitTimeSecond, expr.LimitTimeMinute, expr.LimitTimeHour, expr.LimitTimeDay, expr.LimitTimeWeek}[p]
}

// windowLimit is the limit a fixed-window element carries: a bucket of N
// tokens (burst N) whose refill costs twice the window per token, so that
// the refill of one window never pays for one more connection; the element
// expires with the window and the next one starts full. Rate/unit is
// 30/minute for a second (2 s a token), 30/hour for a minute, 12/day for an
// hour, 3/week for a day (56 h).
func windowLimit(n int, p acl.Period) RateOver {
	rate, unit := [...]int{30, 30, 12, 3}[p], [...]acl.Period{acl.Minute, acl.Hour, acl.Day, periodWeek}[p]
	return RateOver{Rate: rate, Per: unit, Burst: n}
}

// SkUID matches the owner of a local socket: `meta skuid 1000`.
type SkUID struct{ UID uint32 }

// String renders the statement as nft lists it.
func (s *SkUID) String() string { return "meta skuid " + strconv.FormatUint(uint64(s.UID), 10) }

// Exprs implements Stmt: the uid is compared in host byte order.
func (s *SkUID) Exprs() []expr.Any {
	return metaEq(expr.MetaKeySKUID, binaryutil.NativeEndian.PutUint32(s.UID))
}

// RateUpdate keeps a token bucket per key in a dynamic set with timeout and
// matches while the key goes over the rate:
// `update @s { ip saddr limit rate over 10/second }`. Like ConnlimitAdd, it
// does not match when the set is full.
//
// With Window it is `add @s { KEY limit ... }`: the kernel's dynset add of
// an existing element evaluates its limit without renewing its timeout, so
// the element (and its bucket) lives exactly one set timeout from the key's
// first connection: a fixed window.
type RateUpdate struct {
	Set    string
	Key    Key
	Rate   RateOver
	Window bool
	Dep    bool // emit the `meta nfproto` dependency before the key
}

// String renders the statement as nft lists it.
func (s *RateUpdate) String() string {
	op := "update @"
	if s.Window {
		op = "add @"
	}
	return op + s.Set + " { " + s.Key.String() + " " + s.Rate.String() + " }"
}

// Exprs implements Stmt.
func (s *RateUpdate) Exprs() []expr.Any {
	op := uint32(unix.NFT_DYNSET_OP_UPDATE)
	if s.Window {
		op = unix.NFT_DYNSET_OP_ADD
	}
	return append(s.Key.exprs(s.Dep), &expr.Dynset{
		SrcRegKey: 1,
		SetName:   s.Set,
		Operation: op,
		Exprs:     s.Rate.Exprs(),
	})
}

// CtMarkBit matches connections whose ct mark has Bit set:
// `ct mark & 0x40000000 == 0x40000000`.
type CtMarkBit struct{ Bit uint32 }

// String renders the statement as nft lists it.
func (s *CtMarkBit) String() string {
	return fmt.Sprintf("ct mark & 0x%08x == 0x%08x", s.Bit, s.Bit)
}

// Exprs implements Stmt: the mark is host-endian.
func (s *CtMarkBit) Exprs() []expr.Any {
	b := binaryutil.NativeEndian.PutUint32(s.Bit)
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeyMARK},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: b, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b},
	}
}

// TCPNoRST matches TCP packets without the RST flag. nft 1.0.6 lists
// `tcp flags & rst == 0` as `tcp flags ! rst`.
type TCPNoRST struct {
	Dep bool // emit the `meta l4proto tcp` dependency
}

// String renders the statement as nft lists it.
func (s *TCPNoRST) String() string { return "tcp flags ! rst" }

// Exprs implements Stmt.
func (s *TCPNoRST) Exprs() []expr.Any {
	var out []expr.Any
	if s.Dep {
		out = metaEq(expr.MetaKeyL4PROTO, []byte{unix.IPPROTO_TCP})
	}
	return append(out, transportPayload(13, 1),
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0x04}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0}})
}

// TCPSYN matches a plain TCP SYN, the first packet of a connection (with
// the `meta l4proto tcp` dependency): `tcp flags & (fin|syn|rst|ack) ==
// syn`, which nft 1.0.6 lists as `tcp flags syn / fin,syn,rst,ack`; with
// Not, TCP packets that are not one (`tcp flags != syn / ...`).
type TCPSYN struct{ Not bool }

// String renders the statement as nft lists it.
func (s *TCPSYN) String() string {
	if s.Not {
		return "tcp flags != syn / fin,syn,rst,ack"
	}
	return "tcp flags syn / fin,syn,rst,ack"
}

// Exprs implements Stmt.
func (s *TCPSYN) Exprs() []expr.Any {
	op := expr.CmpOpEq
	if s.Not {
		op = expr.CmpOpNeq
	}
	return append(metaEq(expr.MetaKeyL4PROTO, []byte{unix.IPPROTO_TCP}), transportPayload(13, 1),
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0x17}, Xor: []byte{0}},
		&expr.Cmp{Op: op, Register: 1, Data: []byte{0x02}})
}

// ICMPv6Types matches a range of ICMPv6 types: `icmpv6 type 133-136`
// (router solicitation to neighbour advertisement). nft emits both the
// nfproto and the l4proto dependency before it in an inet table.
type ICMPv6Types struct{ Lo, Hi uint8 }

// String renders the statement as nft lists it.
func (s *ICMPv6Types) String() string {
	return "icmpv6 type " + strconv.Itoa(int(s.Lo)) + "-" + strconv.Itoa(int(s.Hi))
}

// Exprs implements Stmt.
func (s *ICMPv6Types) Exprs() []expr.Any {
	out := append(nfprotoDep(acl.IPv6), metaEq(expr.MetaKeyL4PROTO, []byte{unix.IPPROTO_ICMPV6})...)
	return append(out, transportPayload(0, 1),
		&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: []byte{s.Lo}},
		&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: []byte{s.Hi}})
}
