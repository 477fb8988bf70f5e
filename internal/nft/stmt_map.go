package nft

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"

	"github.com/slxsh/slxsh/internal/acl"
)

// MapLookup is the lookup of a classification map:
// `ip saddr . ip daddr . meta l4proto . th sport . th dport vmap @M`
// (the fields of Fields, in that order), or of a counter map:
// `counter name ip saddr . meta l4proto . th dport map @M_c return`.
type MapLookup struct {
	Family   acl.Family
	Fields   MapFields
	Set      string
	Counters bool
}

// String renders the statement as nft lists it.
func (s *MapLookup) String() string {
	key := strings.Join(fieldExprs(s.Family, s.Fields), " . ")
	if s.Counters {
		return "counter name " + key + " map @" + s.Set + " return"
	}
	return key + " vmap @" + s.Set
}

func fieldExprs(f acl.Family, fields MapFields) []string {
	var out []string
	for i, name := range []string{addrField(f, false), addrField(f, true), "meta l4proto", "th sport", "th dport"} {
		if fields&(1<<i) != 0 {
			out = append(out, name)
		}
	}
	return out
}

// Exprs implements Stmt: each field is loaded into the next free 32-bit
// registers (named as the 128-bit register where one starts, as nft does),
// then one lookup whose result is the verdict.
func (s *MapLookup) Exprs() []expr.Any {
	var out []expr.Any
	if s.Fields&(FieldSrc|FieldDst) != 0 {
		out = nfprotoDep(s.Family)
	}
	slot := uint32(0)
	reg := func() uint32 {
		if slot%4 == 0 {
			return 1 + slot/4
		}
		return 8 + slot
	}
	for _, dst := range []bool{false, true} {
		if s.Fields&map[bool]MapFields{false: FieldSrc, true: FieldDst}[dst] == 0 {
			continue
		}
		off, size := addrOffset(s.Family, dst)
		out = append(out, &expr.Payload{DestRegister: reg(), Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: size})
		slot += size / 4
	}
	if s.Fields&FieldProto != 0 {
		r := reg()
		out = append(out, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: r},
			&expr.Byteorder{SourceRegister: r, DestRegister: r, Op: expr.ByteorderHton, Len: 1, Size: 2})
		slot++
	}
	for i, f := range []MapFields{FieldSPort, FieldDPort} {
		if s.Fields&f != 0 {
			out = append(out, &expr.Payload{DestRegister: reg(), Base: expr.PayloadBaseTransportHeader, Offset: uint32(2 * i), Len: 2})
			slot++
		}
	}
	if s.Counters {
		return append(out, &objrefMap{Objref: &expr.Objref{}, Set: s.Set, Register: 1}, &expr.Verdict{Kind: expr.VerdictReturn})
	}
	return append(out, &expr.Lookup{SourceRegister: 1, SetName: s.Set, IsDestRegSet: true, DestRegister: 0})
}

// objrefMap is the objref expression that takes its object from a map
// (`counter name KEY map @M`): NFTA_OBJREF_SET_SREG and _SET_NAME, which
// google/nftables v0.3.0 neither encodes nor decodes. wire writes it;
// the library reads it back as an empty Objref (the embedded one, which
// is what ReadBack compares), so a drift check sees the rule's loads,
// verdict and comment but not the map it names (the map's own elements
// are compared whole, diffMap).
type objrefMap struct {
	*expr.Objref
	Set      string
	Register uint32
}

// typeNames are the nft types of a key's fields.
func (m *VMap) typeNames() []string {
	addr := "ipv4_addr"
	if m.Family == acl.IPv6 {
		addr = "ipv6_addr"
	}
	var out []string
	for i, name := range []string{addr, addr, "inet_proto", "inet_service", "inet_service"} {
		if m.Fields&(1<<i) != 0 {
			out = append(out, name)
		}
	}
	return out
}

// mapString renders a classification map as nft lists it: one element
// per line.
func (s *Set) mapString() string {
	m := s.Map
	data := " : verdict\n"
	if m.Counters {
		data = " : counter\n"
	}
	out := "\tmap " + s.Name + " {\n" +
		"\t\ttype " + strings.Join(m.typeNames(), " . ") + data +
		"\t\tflags interval\n"
	if len(m.Elems) > 0 {
		parts := make([]string, len(m.Elems))
		for i := range m.Elems {
			parts[i] = m.Elems[i].text(m.Fields)
		}
		out += "\t\telements = { " + strings.Join(parts, ",\n\t\t\t     ") + " }\n"
	}
	return out + "\t}\n"
}

// MarshalBinary encodes the map's key and elements as values: what the
// Applier's digest sums and its saved state keeps (gob would encode each
// element through reflection).
func (m *VMap) MarshalBinary() ([]byte, error) {
	if b := m.enc.Load(); b != nil {
		return *b, nil
	}
	b := m.encode()
	m.enc.Store(&b)
	return b, nil
}

func (m *VMap) encode() []byte {
	b := make([]byte, 0, 8+len(m.Elems)*48)
	counters := byte(0)
	if m.Counters {
		counters = 1
	}
	b = append(b, byte(m.Family), byte(m.Fields), counters)
	b = binary.AppendUvarint(b, uint64(len(m.Elems)))
	for i := range m.Elems {
		e := &m.Elems[i]
		b = binary.AppendUvarint(b, uint64(e.Seq))
		for _, p := range []netip.Prefix{e.Src, e.Dst} {
			n := len(b)
			b, _ = p.AppendBinary(append(b, 0))
			b[n] = byte(len(b) - n - 1)
		}
		b = append(b, e.ProtoLo, e.ProtoHi)
		for _, port := range []uint16{e.SPortLo, e.SPortHi, e.DPortLo, e.DPortHi} {
			b = binary.BigEndian.AppendUint16(b, port)
		}
		jump := byte(0)
		if e.Jump {
			jump = 1
		}
		b = append(b, jump)
		b = append(binary.AppendUvarint(b, uint64(len(e.Chain))), e.Chain...)
		b = append(binary.AppendUvarint(b, uint64(len(e.Counter))), e.Counter...)
	}
	return b
}

// UnmarshalBinary decodes what MarshalBinary encoded.
func (m *VMap) UnmarshalBinary(b []byte) error {
	m.enc.Store(nil)
	bad := errors.New("nft: damaged map encoding")
	if len(b) < 3 || b[2] > 1 {
		return bad
	}
	m.Family, m.Fields, m.Counters, b = acl.Family(b[0]), MapFields(b[1]), b[2] == 1, b[3:]
	uvarint := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	n, ok := uvarint()
	if !ok || n > uint64(len(b)) {
		return bad
	}
	m.Elems = make([]MapElem, n)
	for i := range m.Elems {
		e := &m.Elems[i]
		seq, ok := uvarint()
		if !ok {
			return bad
		}
		e.Seq = int(seq)
		for _, p := range []*netip.Prefix{&e.Src, &e.Dst} {
			if len(b) < 1 || len(b) < 1+int(b[0]) {
				return bad
			}
			if err := p.UnmarshalBinary(b[1 : 1+int(b[0])]); err != nil {
				return bad
			}
			b = b[1+int(b[0]):]
		}
		if len(b) < 11 {
			return bad
		}
		e.ProtoLo, e.ProtoHi = b[0], b[1]
		e.SPortLo, e.SPortHi = binary.BigEndian.Uint16(b[2:]), binary.BigEndian.Uint16(b[4:])
		e.DPortLo, e.DPortHi = binary.BigEndian.Uint16(b[6:]), binary.BigEndian.Uint16(b[8:])
		e.Jump, b = b[10] == 1, b[11:]
		for _, name := range []*string{&e.Chain, &e.Counter} {
			l, ok := uvarint()
			if !ok || l > uint64(len(b)) {
				return bad
			}
			*name, b = string(b[:l]), b[l:]
		}
	}
	if len(b) != 0 {
		return bad
	}
	return nil
}

// text renders an element as nft lists it: `10.0.0.1 . 0.0.0.0/0 . tcp .
// 0-65535 . 22 : goto ip_check_in_10`.
func (e *MapElem) text(fields MapFields) string {
	var parts []string
	for i := range nFields {
		if fields&(1<<i) == 0 {
			continue
		}
		switch MapFields(1 << i) {
		case FieldSrc:
			parts = append(parts, prefixString(e.Src))
		case FieldDst:
			parts = append(parts, prefixString(e.Dst))
		case FieldProto:
			if e.ProtoLo == e.ProtoHi {
				parts = append(parts, protoString(e.ProtoLo))
			} else {
				parts = append(parts, strconv.Itoa(int(e.ProtoLo))+"-"+strconv.Itoa(int(e.ProtoHi)))
			}
		case FieldSPort:
			parts = append(parts, rangeString(e.SPortLo, e.SPortHi))
		case FieldDPort:
			parts = append(parts, rangeString(e.DPortLo, e.DPortHi))
		}
	}
	key := strings.Join(parts, " . ") + " : "
	switch {
	case e.Counter != "":
		return key + quote(e.Counter)
	case e.Jump:
		return key + "jump " + e.Chain
	}
	return key + "goto " + e.Chain
}

func prefixString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return addrString(p.Addr())
	}
	return addrString(p.Addr()) + "/" + strconv.Itoa(p.Bits())
}

func rangeString(lo, hi uint16) string {
	if lo == hi {
		return strconv.Itoa(int(lo))
	}
	return strconv.Itoa(int(lo)) + "-" + strconv.Itoa(int(hi))
}

// matches reports whether a connection's first packet falls in the
// element's ranges (the fields outside the key are full ranges).
func (e *MapElem) matches(f Flow) bool {
	return e.Src.Contains(f.Src.Unmap()) && e.Dst.Contains(f.Dst.Unmap()) &&
		f.Proto >= e.ProtoLo && f.Proto <= e.ProtoHi &&
		f.SPort >= e.SPortLo && f.SPort <= e.SPortHi && f.DPort >= e.DPortLo && f.DPort <= e.DPortHi
}

// kernelMapSet is the library form of a classification map.
func kernelMapSet(t *nftables.Table, s *Set) *nftables.Set {
	m := s.Map
	addr := nftables.TypeIPAddr
	if m.Family == acl.IPv6 {
		addr = nftables.TypeIP6Addr
	}
	var types []nftables.SetDatatype
	for i, ty := range []nftables.SetDatatype{addr, addr, nftables.TypeInetProto, nftables.TypeInetService, nftables.TypeInetService} {
		if m.Fields&(1<<i) != 0 {
			types = append(types, ty)
		}
	}
	ks := &nftables.Set{Table: t, Name: s.Name, IsMap: true, Interval: true, Concatenation: true,
		KeyType: nftables.MustConcatSetType(types...), DataType: nftables.TypeVerdict, KeyByteOrder: binaryutil.BigEndian}
	if m.Counters {
		ks.IsMap, ks.DataType = false, counterObjects
	}
	return ks
}

// counterObjects marks the library form of a counter map (DataType, of
// a set that is not IsMap): google/nftables v0.3.0 has no object maps,
// so wire adds NFT_SET_OBJECT and NFTA_SET_OBJ_TYPE to the set it
// encodes, and an element's Val is the name of its counter
// (NFTA_SET_ELEM_OBJREF).
var counterObjects = nftables.SetDatatype{Name: "counter"}

// isCounterMap reports whether ks is the library form of a counter map.
func isCounterMap(ks *nftables.Set) bool { return !ks.IsMap && ks.DataType.Name == counterObjects.Name }

// kernelElem is the library form of an element: each field's first and
// last value, padded to 32 bits, and the verdict.
func (m *VMap) kernelElem(e *MapElem) nftables.SetElement {
	var from, to []byte
	pad := func(b []byte) []byte {
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	for i := range nFields {
		f := MapFields(1 << i)
		if m.Fields&f == 0 {
			continue
		}
		switch f {
		case FieldSrc, FieldDst:
			p := e.Src
			if f == FieldDst {
				p = e.Dst
			}
			from, to = append(from, p.Addr().AsSlice()...), append(to, lastAddr(p).AsSlice()...)
		case FieldProto:
			from, to = pad(append(from, e.ProtoLo)), pad(append(to, e.ProtoHi))
		case FieldSPort:
			from, to = pad(append(from, byte(e.SPortLo>>8), byte(e.SPortLo))), pad(append(to, byte(e.SPortHi>>8), byte(e.SPortHi)))
		case FieldDPort:
			from, to = pad(append(from, byte(e.DPortLo>>8), byte(e.DPortLo))), pad(append(to, byte(e.DPortHi>>8), byte(e.DPortHi)))
		}
	}
	if m.Counters {
		return nftables.SetElement{Key: from, KeyEnd: to, Val: []byte(e.Counter)}
	}
	kind := expr.VerdictGoto
	if e.Jump {
		kind = expr.VerdictJump
	}
	return nftables.SetElement{Key: from, KeyEnd: to, VerdictData: &expr.Verdict{Kind: kind, Chain: e.Chain}}
}

// lastAddr is the last address of a prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
