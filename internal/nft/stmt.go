package nft

import (
	"encoding/binary"
	"net/netip"
	"strconv"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/slxsh/slxsh/internal/acl"
)

// The statements of our rules. Each renders as `nft list` prints it and
// produces the expressions nft 1.0.6 generates for that text (checked with
// `nft --debug=netlink`). Matches on a header need a dependency check first
// (`meta nfproto` before an IP header field in an inet table, `meta l4proto`
// before a port); nft emits it only for the first such match of a rule, so
// the compiler sets Dep on exactly that statement.

// Iface matches the input or output interface by name: `iifname "eth0"`.
type Iface struct {
	Out  bool
	Name string
}

// String renders the statement as nft lists it.
func (s *Iface) String() string {
	if s.Out {
		return "oifname " + quote(s.Name)
	}
	return "iifname " + quote(s.Name)
}

// Exprs implements Stmt: the name is compared as a zero-padded IFNAMSIZ
// buffer.
func (s *Iface) Exprs() []expr.Any {
	key := expr.MetaKeyIIFNAME
	if s.Out {
		key = expr.MetaKeyOIFNAME
	}
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, s.Name)
	return metaEq(key, b)
}

// NFProto matches the address family: `meta nfproto ipv4`.
type NFProto struct{ Family acl.Family }

// String renders the statement as nft lists it.
func (s *NFProto) String() string {
	if s.Family == acl.IPv6 {
		return "meta nfproto ipv6"
	}
	return "meta nfproto ipv4"
}

// Exprs implements Stmt.
func (s *NFProto) Exprs() []expr.Any { return nfprotoDep(s.Family) }

// L4Proto matches the transport protocol: `meta l4proto tcp`.
type L4Proto struct{ Proto uint8 }

// String renders the statement as nft lists it.
func (s *L4Proto) String() string { return "meta l4proto " + protoString(s.Proto) }

// Exprs implements Stmt.
func (s *L4Proto) Exprs() []expr.Any { return metaEq(expr.MetaKeyL4PROTO, []byte{s.Proto}) }

// Conntrack states, as bits of `ct state`.
const (
	CtInvalid     = 1
	CtEstablished = 2
	CtRelated     = 4
	CtNew         = 8
	CtUntracked   = 64
)

// CtState matches conntrack states (a bit set): `ct state established,related`.
type CtState struct{ States uint32 }

// String renders the statement as nft lists it.
func (s *CtState) String() string {
	names := []struct {
		bit  uint32
		name string
	}{{CtInvalid, "invalid"}, {CtEstablished, "established"}, {CtRelated, "related"}, {CtNew, "new"}, {CtUntracked, "untracked"}}
	out := "ct state "
	first := true
	for _, n := range names {
		if s.States&n.bit != 0 {
			if !first {
				out += ","
			}
			out += n.name
			first = false
		}
	}
	return out
}

// Exprs implements Stmt: ct state is a host-endian bit mask.
func (s *CtState) Exprs() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(s.States), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

// Addr matches the source or destination address: `ip saddr 10.0.0.0/24`,
// `ip6 daddr 2001:db8::1`, `ip saddr & 0.0.0.255 == 0.0.0.5` (Cisco
// wildcard). Match.Kind must not be AddrAny.
type Addr struct {
	Family acl.Family
	Dst    bool
	Match  acl.Addr
	Dep    bool // emit the `meta nfproto` dependency
}

// String renders the statement as nft lists it.
func (s *Addr) String() string {
	h := addrField(s.Family, s.Dst)
	m := s.Match
	if m.Kind == acl.AddrWildcard {
		return h + " & " + addrString(notAddr(m.Wildcard)) + " == " + addrString(m.Base)
	}
	if m.Prefix.IsSingleIP() {
		return h + " " + addrString(m.Prefix.Addr())
	}
	return h + " " + addrString(m.Prefix.Addr()) + "/" + strconv.Itoa(m.Prefix.Bits())
}

// Exprs implements Stmt. A prefix on a byte boundary loads only its bytes;
// any other prefix or wildcard loads the whole address and masks it.
func (s *Addr) Exprs() []expr.Any {
	var out []expr.Any
	if s.Dep {
		out = nfprotoDep(s.Family)
	}
	off, size := addrOffset(s.Family, s.Dst)
	m := s.Match
	switch {
	case m.Kind == acl.AddrWildcard:
		mask := notAddr(m.Wildcard).AsSlice()
		out = append(out, netPayload(off, size),
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: size, Mask: mask, Xor: make([]byte, size)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: m.Base.AsSlice()})
	case m.Prefix.Bits()%8 == 0:
		n := uint32(m.Prefix.Bits() / 8)
		out = append(out, netPayload(off, n),
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: m.Prefix.Addr().AsSlice()[:n]})
	default:
		mask := maskAddr(int(size)*8, m.Prefix.Bits()).AsSlice()
		out = append(out, netPayload(off, size),
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: size, Mask: mask, Xor: make([]byte, size)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: m.Prefix.Addr().AsSlice()})
	}
	return out
}

// Ports matches transport ports: `tcp sport 1024-65535 tcp dport 22`.
// Operators lt and gt are rendered as ranges (`tcp dport 0-1023`): nft
// 1.0.6 lists `tcp dport < 1024 tcp sport > 5` wrongly as one range.
// Op PortNone on a side means no match on that side.
type Ports struct {
	Proto    uint8 // ProtoTCP, ProtoUDP or ProtoSCTP
	Src, Dst acl.PortMatch
	Dep      bool // emit the `meta l4proto` dependency
}

// String renders the statement as nft lists it.
func (s *Ports) String() string {
	name := protoString(s.Proto)
	out := ""
	for i, pm := range []acl.PortMatch{normPort(s.Src), normPort(s.Dst)} {
		if pm.Op == acl.PortNone {
			continue
		}
		if out != "" {
			out += " "
		}
		out += name + []string{" sport ", " dport "}[i]
		switch pm.Op {
		case acl.PortEq:
			out += strconv.Itoa(int(pm.Lo))
		case acl.PortNeq:
			out += "!= " + strconv.Itoa(int(pm.Lo))
		case acl.PortRange:
			out += strconv.Itoa(int(pm.Lo)) + "-" + strconv.Itoa(int(pm.Hi))
		}
	}
	return out
}

// Exprs implements Stmt. Like nft, equality on both ports becomes one 4-byte
// comparison. nft 1.0.6 also merges `sport != A dport != B` into one 4-byte
// `!=`, which matches when either port differs: that is a bug, and here the
// two comparisons stay apart (the kernel lists both forms the same).
func (s *Ports) Exprs() []expr.Any {
	var out []expr.Any
	if s.Dep {
		out = metaEq(expr.MetaKeyL4PROTO, []byte{s.Proto})
	}
	src, dst := normPort(s.Src), normPort(s.Dst)
	if src.Op == acl.PortEq && dst.Op == acl.PortEq {
		data := binary.BigEndian.AppendUint16(binaryutil.BigEndian.PutUint16(src.Lo), dst.Lo)
		return append(out, transportPayload(0, 4), &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data})
	}
	for i, pm := range []acl.PortMatch{src, dst} {
		if pm.Op == acl.PortNone {
			continue
		}
		out = append(out, transportPayload(uint32(2*i), 2))
		be := binaryutil.BigEndian.PutUint16
		switch pm.Op {
		case acl.PortEq:
			out = append(out, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: be(pm.Lo)})
		case acl.PortNeq:
			out = append(out, &expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: be(pm.Lo)})
		case acl.PortRange:
			out = append(out, &expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: be(pm.Lo)},
				&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: be(pm.Hi)})
		}
	}
	return out
}

// normPort turns lt/gt into ranges and a one-port range into eq. The
// compiler rejects `lt 0` and `gt 65535`, which match nothing.
func normPort(p acl.PortMatch) acl.PortMatch {
	switch p.Op {
	case acl.PortLt:
		return acl.PortMatch{Op: acl.PortRange, Lo: 0, Hi: p.Lo - 1}
	case acl.PortGt:
		return acl.PortMatch{Op: acl.PortRange, Lo: p.Lo + 1, Hi: 65535}
	case acl.PortRange:
		if p.Lo == p.Hi {
			return acl.PortMatch{Op: acl.PortEq, Lo: p.Lo}
		}
	}
	return p
}

// Key is what a limit set counts by: `ip saddr`, `ip6 daddr`,
// `ip saddr & 255.255.255.0` (per-prefix), or `meta nfproto` (total: a key
// that is constant within a single-family ACL chain, so one element holds the
// one shared count and survives rule replacement).
type Key struct {
	Family    acl.Family
	Kind      acl.KeyKind
	PrefixLen int // PerPrefix only, 1 to 31 (127 for IPv6)
}

// String renders the key expression as nft prints it.
func (k Key) String() string {
	switch k.Kind {
	case acl.Total:
		return "meta nfproto"
	case acl.PerDestination:
		return addrField(k.Family, true)
	case acl.PerPrefix:
		return addrField(k.Family, false) + " & " + addrString(maskAddr(bitsOf(k.Family), k.PrefixLen))
	}
	return addrField(k.Family, false)
}

// SetKey returns the type of the set that holds this key.
func (k Key) SetKey() SetKey {
	switch {
	case k.Kind == acl.Total:
		return KeyNFProto
	case k.Family == acl.IPv6:
		return KeyIPv6
	}
	return KeyIPv4
}

// exprs loads the key into register 1.
func (k Key) exprs(dep bool) []expr.Any {
	if k.Kind == acl.Total {
		return []expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}}
	}
	var out []expr.Any
	if dep {
		out = nfprotoDep(k.Family)
	}
	off, size := addrOffset(k.Family, k.Kind == acl.PerDestination)
	out = append(out, netPayload(off, size))
	if k.Kind == acl.PerPrefix {
		out = append(out, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: size,
			Mask: maskAddr(int(size)*8, k.PrefixLen).AsSlice(), Xor: make([]byte, size)})
	}
	return out
}

// ConnlimitAdd adds the key to a dynamic set whose elements count
// connections, and matches when the key's count, including this
// connection, is over Over: `add @s { ip saddr ct count over 3 }`. When the
// set is full the add fails and the statement does not match (the kernel
// breaks the rule), so the rule after it must refuse what it let through.
type ConnlimitAdd struct {
	Set  string
	Key  Key
	Over int
	Dep  bool // emit the `meta nfproto` dependency before the key
}

// String renders the statement as nft lists it.
func (s *ConnlimitAdd) String() string {
	return "add @" + s.Set + " { " + s.Key.String() + " ct count over " + strconv.Itoa(s.Over) + " }"
}

// Exprs implements Stmt.
func (s *ConnlimitAdd) Exprs() []expr.Any {
	return append(s.Key.exprs(s.Dep), &expr.Dynset{
		SrcRegKey: 1,
		SetName:   s.Set,
		Operation: unix.NFT_DYNSET_OP_ADD,
		Exprs:     []expr.Any{&expr.Connlimit{Count: uint32(s.Over), Flags: expr.NFT_CONNLIMIT_F_INV}},
	})
}

// SetLookup matches when the key is (or with Invert, is not) in a set:
// `ip saddr != @s`.
type SetLookup struct {
	Set    string
	Key    Key
	Invert bool
	Dep    bool // emit the `meta nfproto` dependency before the key
}

// String renders the statement as nft lists it.
func (s *SetLookup) String() string {
	if s.Invert {
		return s.Key.String() + " != @" + s.Set
	}
	if s.Key.Kind == acl.PerPrefix {
		// nft spells the operator out after a masked key.
		return s.Key.String() + " == @" + s.Set
	}
	return s.Key.String() + " @" + s.Set
}

// Exprs implements Stmt.
func (s *SetLookup) Exprs() []expr.Any {
	return append(s.Key.exprs(s.Dep), &expr.Lookup{SourceRegister: 1, SetName: s.Set, Invert: s.Invert})
}

// CounterRef counts the packet on a named counter object:
// `counter name "ip_check_in_10_matches"`.
type CounterRef struct{ Name string }

// String renders the statement as nft lists it.
func (s *CounterRef) String() string { return "counter name " + quote(s.Name) }

// Exprs implements Stmt.
func (s *CounterRef) Exprs() []expr.Any {
	return []expr.Any{&expr.Objref{Type: unix.NFT_OBJECT_COUNTER, Name: s.Name}}
}

// Reject refuses with a TCP reset (the rule must have established that the
// packet is TCP) or with ICMP/ICMPv6 administratively prohibited.
type Reject struct{ TCPReset bool }

// String renders the statement as nft lists it.
func (s *Reject) String() string {
	if s.TCPReset {
		return "reject with tcp reset"
	}
	return "reject with icmpx admin-prohibited"
}

// Exprs implements Stmt.
func (s *Reject) Exprs() []expr.Any {
	if s.TCPReset {
		return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_TCP_RST, Code: 0}}
	}
	return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED}}
}

// Verdict ends a rule: accept, drop, return, or jump/goto Chain.
type Verdict struct {
	Kind  expr.VerdictKind
	Chain string
}

// String renders the statement as nft lists it.
func (s *Verdict) String() string {
	switch s.Kind {
	case expr.VerdictAccept:
		return "accept"
	case expr.VerdictDrop:
		return "drop"
	case expr.VerdictReturn:
		return "return"
	case expr.VerdictJump:
		return "jump " + s.Chain
	case expr.VerdictGoto:
		return "goto " + s.Chain
	}
	return "continue"
}

// Exprs implements Stmt.
func (s *Verdict) Exprs() []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: s.Kind, Chain: s.Chain}}
}

// Helpers shared by the statements.

func metaEq(key expr.MetaKey, data []byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data},
	}
}

func nfprotoDep(f acl.Family) []expr.Any {
	p := byte(unix.NFPROTO_IPV4)
	if f == acl.IPv6 {
		p = unix.NFPROTO_IPV6
	}
	return metaEq(expr.MetaKeyNFPROTO, []byte{p})
}

func netPayload(off, n uint32) *expr.Payload {
	return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n}
}

func transportPayload(off, n uint32) *expr.Payload {
	return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: n}
}

func addrField(f acl.Family, dst bool) string {
	h := "ip"
	if f == acl.IPv6 {
		h = "ip6"
	}
	if dst {
		return h + " daddr"
	}
	return h + " saddr"
}

// addrOffset is where the address lies in the network header, and its size.
func addrOffset(f acl.Family, dst bool) (off, size uint32) {
	if f == acl.IPv6 {
		if dst {
			return 24, 16
		}
		return 8, 16
	}
	if dst {
		return 16, 4
	}
	return 12, 4
}

func bitsOf(f acl.Family) int {
	if f == acl.IPv6 {
		return 128
	}
	return 32
}

// hostAddr is a convenience for tests and callers building Addr matches.
func hostAddr(a netip.Addr) acl.Addr {
	return acl.Addr{Kind: acl.AddrPrefix, Prefix: netip.PrefixFrom(a, a.BitLen())}
}
