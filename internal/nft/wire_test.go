package nft

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/slxsh/slxsh/internal/acl/acltest"
	"github.com/slxsh/slxsh/internal/cli"
)

// libraryBatch queues what q queues into the library's Conn and returns its
// messages as the batch writer sent them: without acknowledgement, and
// echoing only the rules of chains that echo names (nil: all).
func libraryBatch(q func(txnWriter) error, echo func(string) bool) ([]netlink.Message, error) {
	var got []netlink.Message
	c, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		for _, m := range req {
			if t := m.Header.Type; t == unix.NFNL_MSG_BATCH_BEGIN || t == unix.NFNL_MSG_BATCH_END {
				continue
			}
			m.Header.Flags &^= netlink.Acknowledge
			if m.Header.Type == newRuleType && echo != nil && !echo(ruleChain(m.Data)) {
				m.Header.Flags &^= netlink.Echo
			}
			got = append(got, m)
		}
		return acks(req), nil
	}))
	if err != nil {
		return nil, err
	}
	if err := q(c); err != nil {
		return nil, err
	}
	return got, c.Flush()
}

// sameAsLibrary reports the first difference between the messages that q
// queues into the library's Conn and those of w, a wire that q queued
// into (nil: a new one; "" when none: every byte of every message, its
// type and flags agree), and the wire.
func sameAsLibrary(q func(txnWriter) error, echo func(string) bool, w *wire) (string, *wire, error) {
	lib, err := libraryBatch(q, echo)
	if err != nil {
		return "", nil, fmt.Errorf("library: %w", err)
	}
	if w == nil {
		w = newWire(echo, 0)
		if err := q(w); err != nil {
			return "", nil, fmt.Errorf("wire: %w", err)
		}
	}
	w.moveLib()
	if w.err != nil {
		return "", nil, fmt.Errorf("wire: %w", w.err)
	}
	if len(w.offs) != len(lib) {
		return fmt.Sprintf("%d messages, the library %d", len(w.offs), len(lib)), w, nil
	}
	for i, m := range lib {
		off := int(w.offs[i])
		n := int(binary.NativeEndian.Uint32(w.buf[off:]))
		typ, flags := binary.NativeEndian.Uint16(w.buf[off+4:]), binary.NativeEndian.Uint16(w.buf[off+6:])
		seq := binary.NativeEndian.Uint32(w.buf[off+8:])
		data := append(m.Data[:len(m.Data):len(m.Data)], make([]byte, nlmsgAlign(len(m.Data))-len(m.Data))...)
		mine := bytes.Clone(w.buf[off+nlmsgHdr : off+n])
		maskSetID(typ, data, mine)
		switch {
		case typ != uint16(m.Header.Type) || flags != uint16(m.Header.Flags):
			return fmt.Sprintf("message %d (%s): type %#x flags %#x, the library %#x %#x", i, w.describe(seq), typ, flags, uint16(m.Header.Type), uint16(m.Header.Flags)), w, nil
		case seq != uint32(i+wireBegin+1):
			return fmt.Sprintf("message %d: sequence %d", i, seq), w, nil
		case objectMapMessage(typ, mine):
			// The library cannot encode it (TestWireCounterMap holds it
			// to nft's encoding).
		case !bytes.Equal(mine, data):
			return fmt.Sprintf("message %d (%s):\n wire    %x\n library %x", i, w.describe(seq), mine, data), w, nil
		}
	}
	return "", w, nil
}

// objectMapMessage reports whether the data of a message of wire's is one
// that holds what only wire encodes: an object map's creation, elements
// that name objects, or a rule with an objref from a map.
func objectMapMessage(typ uint16, data []byte) bool {
	nested := func(b []byte, typ uint16) [][]byte { // every attribute typ in b (0: any)
		var out [][]byte
		ad, err := netlink.NewAttributeDecoder(b)
		if err != nil {
			return nil
		}
		for ad.Next() {
			if typ == 0 || ad.Type() == typ {
				out = append(out, ad.Bytes())
			}
		}
		return out
	}
	switch typ & 0xff {
	case unix.NFT_MSG_NEWSET:
		return attrOf(data, unix.NFTA_SET_OBJ_TYPE) != nil
	case unix.NFT_MSG_NEWSETELEM:
		for _, list := range nested(data[4:], unix.NFTA_SET_ELEM_LIST_ELEMENTS) {
			for _, el := range nested(list, 0) {
				if len(nested(el, unix.NFTA_SET_ELEM_OBJREF)) > 0 {
					return true
				}
			}
		}
	case unix.NFT_MSG_NEWRULE:
		for _, list := range nested(data[4:], unix.NFTA_RULE_EXPRESSIONS) {
			for _, e := range nested(list, unix.NFTA_LIST_ELEM) {
				for _, d := range nested(e, unix.NFTA_EXPR_DATA) {
					if len(nested(d, unix.NFTA_OBJREF_SET_SREG)) > 0 {
						return true
					}
				}
			}
		}
	}
	return false
}

// maskSetID zeroes the set's transaction id in the data of a set or
// elements message, lib's and wire's, where both hold one: the library
// takes the ids of the sets it adds from a counter of the process. An id
// that only one of them holds stays, and differs.
func maskSetID(typ uint16, lib, wire []byte) {
	var id uint16
	switch typ & 0xff {
	case unix.NFT_MSG_NEWSET:
		id = unix.NFTA_SET_ID
	case unix.NFT_MSG_NEWSETELEM, unix.NFT_MSG_DELSETELEM:
		id = unix.NFTA_SET_ELEM_LIST_SET_ID
	default:
		return
	}
	a, b := attrOf(lib, id), attrOf(wire, id)
	if a == nil || b == nil || len(a) != len(b) || !slices.ContainsFunc(a, func(x byte) bool { return x != 0 }) ||
		!slices.ContainsFunc(b, func(x byte) bool { return x != 0 }) {
		return
	}
	clear(a)
	clear(b)
}

func init() {
	// Every Apply of the package's tests (those on the kernel too: changes,
	// renewals, drift repairs, restarts) holds its wire to the library.
	wireCheck = func(w *wire, q func(txnWriter) error, echo func(string) bool) {
		d, _, err := sameAsLibrary(q, echo, w)
		if err != nil || d != "" {
			panic(fmt.Sprintf("wire is not the library's encoding: %v%s", err, d))
		}
	}
}

func nlmsgAlign(n int) int { return (n + 3) &^ 3 }

// ruleChain reads the chain of a NEWRULE message ("" if it has none).
func ruleChain(data []byte) string {
	if len(data) < 4 {
		return ""
	}
	ad, err := netlink.NewAttributeDecoder(data[4:])
	if err != nil {
		return ""
	}
	for ad.Next() {
		if ad.Type() == unix.NFTA_RULE_CHAIN {
			return ad.String()
		}
	}
	return ""
}

func freshTable() *tableState {
	return &tableState{chains: map[string]*nftables.Chain{}, sets: map[string]*nftables.Set{}, objs: map[string]*nftables.NamedObj{}}
}

// The batch of a transaction is, byte for byte, what the library would
// have sent: for random configurations into an empty table and into a
// table that holds another configuration (stale chains, sets and
// counters deleted, sets of other properties re-created), and for a long
// list of maps and limits. The kernel tests check every Apply the same
// way (wireCheck).
func TestWireIsLibrary(t *testing.T) {
	opts := Options{MgmtInterface: "eth0", InterfaceMap: map[string]string{"0/1": "eth1", "0/2": "eth2"},
		Zone: time.UTC, Now: time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC), MapRun: 2,
		LookupUser: func(string) (uint32, error) { return 1000, nil }}
	var prev *Ruleset
	checked := 0
	for seed := range 150 {
		r := rand.New(rand.NewPCG(uint64(seed), 71))
		rs, err := Compile(acltest.Random(r), opts)
		if err != nil {
			continue
		}
		rs.Table = "slxsh"
		for _, cur := range []*tableState{freshTable(), tableOfPrev(prev)} {
			q := func(c txnWriter) error {
				_, err := queue(c, "slxsh", cur, rs, nil, nil, nil, nil)
				return err
			}
			d, w, err := sameAsLibrary(q, handlesWorth(rs), nil)
			if err != nil || d != "" {
				t.Fatalf("seed %d: %v%s", seed, err, d)
			}
			checked += len(w.offs)
		}
		prev = rs
	}
	cfg, err := cli.ParseConfig(wireConfig(3000))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Compile(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, w, err := sameAsLibrary(func(c txnWriter) error {
		_, err := queue(c, "slxsh", freshTable(), rs, nil, nil, nil, nil)
		return err
	}, nil, nil)
	if err != nil || d != "" {
		t.Fatalf("3000 entries: %v%s", err, d)
	}
	if checked += len(w.offs); checked < 20000 {
		t.Fatalf("only %d messages compared", checked)
	}
}

func tableOfPrev(rs *Ruleset) *tableState {
	if rs == nil {
		return freshTable()
	}
	return tableOf(rs)
}

func wireConfig(n int) string {
	var b strings.Builder
	b.WriteString("ip access-list extended big\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, " seq %d permit tcp host 10.%d.%d.%d any eq %d", i, i/65536, i/256%256, i%256, 1000+i%20000)
		if i%100 == 0 {
			b.WriteString(" connlimit 3")
		}
		b.WriteString("\n")
	}
	b.WriteString(" seq 65000 permit ip any any\ninterface eth1\n ip access-group big in\n")
	return b.String()
}

// A kernel error names what the message did, and to what.
func TestWireNamesKernelErrors(t *testing.T) {
	w := newWire(nil, 0)
	tb := &nftables.Table{Name: "slxsh", Family: nftables.TableFamilyINet}
	w.AddTable(tb)
	w.AddChain(&nftables.Chain{Table: tb, Name: "c1"})
	w.AddRule(&nftables.Rule{Table: tb, Chain: &nftables.Chain{Name: "c1", Table: tb}})
	if err := w.AddSet(&nftables.Set{Table: tb, Name: "s1", KeyType: nftables.TypeIPAddr}, nil); err != nil {
		t.Fatal(err)
	}
	w.AddObj(&nftables.CounterObj{Table: tb, Name: "n1"})
	_, last, end, err := w.finish()
	if err != nil || last != 6 || end != 7 {
		t.Fatalf("finish: last %d end %d %v", last, end, err)
	}
	errOf := func(code unix.Errno) netlink.Message {
		return netlink.Message{Data: binary.NativeEndian.AppendUint32(nil, uint32(-int32(code)))}
	}
	got := w.kernelErrors(map[uint32]netlink.Message{3: errOf(unix.EEXIST), 4: errOf(unix.ENOENT), 5: errOf(unix.EINVAL), 6: errOf(unix.EBUSY), end: errOf(unix.EPERM)})
	want := "add chain c1: file exists\nadd rule to chain c1: no such file or directory\nadd set s1: invalid argument\nadd object n1: device or resource busy\nbatch: operation not permitted"
	if got == nil || got.Error() != want {
		t.Fatalf("errors:\n%v\nwant\n%s", got, want)
	}
}

// BenchmarkQueue queues the transaction that applies a 50k-entry list
// into an empty table.
func BenchmarkQueue(b *testing.B) {
	cfg, err := cli.ParseConfig(wireConfig(50000))
	if err != nil {
		b.Fatal(err)
	}
	rs, err := Compile(cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	rs.Table = "slxsh"
	echo := handlesWorth(rs)
	for b.Loop() {
		w := newWire(echo, wireSize(messagesOf(rs), nil))
		if _, err := queue(w, "slxsh", freshTable(), rs, nil, nil, nil, nil); err != nil {
			b.Fatal(err)
		}
		if _, _, _, err := w.finish(); err != nil {
			b.Fatal(err)
		}
	}
}

// Elements the Apply transaction does not make today are written as the
// library writes them too: timeouts, interval ends, data values, comments
// (these through the library), and every other message of wire's own.
func TestWireElementsAndMessagesAreLibrary(t *testing.T) {
	tb := &nftables.Table{Name: "slxsh", Family: nftables.TableFamilyINet}
	s := &nftables.Set{Table: tb, Name: "s", ID: 7, KeyType: nftables.TypeIPAddr, HasTimeout: true, Interval: true}
	m := &nftables.Set{Table: tb, Name: "m", ID: 8, KeyType: nftables.TypeIPAddr, DataType: nftables.TypeMark, IsMap: true}
	ch := &nftables.Chain{Table: tb, Name: "c"}
	prio, hook, pol := nftables.ChainPriorityFilter, nftables.ChainHookInput, nftables.ChainPolicyDrop
	q := func(c txnWriter) error {
		c.AddChain(&nftables.Chain{Table: tb, Name: "base", Hooknum: hook, Priority: prio, Policy: &pol, Type: nftables.ChainTypeFilter, Device: "eth0"})
		els := []nftables.SetElement{{Key: []byte{10, 0, 0, 1}, Timeout: 90 * time.Second}, {Key: []byte{10, 0, 0, 9}, IntervalEnd: true}}
		for _, f := range []func(*nftables.Set, []nftables.SetElement) error{c.SetAddElements, c.SetDeleteElements} {
			if err := f(s, els); err != nil {
				return err
			}
			if err := f(m, []nftables.SetElement{{Key: []byte{10, 0, 0, 2}, Val: []byte{0, 0, 0, 5}}}); err != nil {
				return err
			}
			if err := f(s, []nftables.SetElement{{Key: []byte{10, 0, 0, 3}, Comment: "note"}}); err != nil {
				return err
			}
		}
		c.AddObj(&nftables.CounterObj{Table: tb, Name: "n", Bytes: 5, Packets: 1})
		c.AddObj(&nftables.QuotaObj{Table: tb, Name: "qq", Bytes: 100})
		c.DeleteObject(&nftables.CounterObj{Table: tb, Name: "n"})
		c.DeleteObject(&nftables.NamedObj{Table: tb, Name: "n2", Type: nftables.ObjTypeCounter})
		c.DeleteObject(&nftables.NamedObj{Table: tb, Name: "q2", Type: nftables.ObjTypeQuota})
		c.DelChain(ch)
		c.FlushChain(ch)
		if err := c.DelRule(&nftables.Rule{Table: tb, Chain: ch, Handle: 9}); err != nil {
			return err
		}
		c.InsertRule(&nftables.Rule{Table: tb, Chain: ch, Position: 4, Exprs: []expr.Any{
			&expr.Ct{Key: expr.CtKeySRC, Register: 1, Direction: 1},
			&expr.Payload{OperationType: expr.PayloadWrite, SourceRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4, CsumType: expr.CsumTypeInet, CsumOffset: 10},
			&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
			&expr.Counter{},
		}})
		c.AddRule(&nftables.Rule{Table: tb, Chain: ch, Handle: 3, Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}})
		c.InsertRule(&nftables.Rule{Table: tb, Chain: ch, Handle: 5, Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}})
		return nil
	}
	d, w, err := sameAsLibrary(q, func(string) bool { return false }, nil)
	if err != nil || d != "" {
		t.Fatalf("%v%s", err, d)
	}
	if len(w.offs) != 18 {
		t.Fatalf("%d messages", len(w.offs))
	}
}
