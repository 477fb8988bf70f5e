package nft

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// txnWriter is what an Apply transaction queues its messages into: wire,
// or (in the test that holds wire to it) the library's Conn.
type txnWriter interface {
	AddTable(*nftables.Table) *nftables.Table
	AddSet(*nftables.Set, []nftables.SetElement) error
	DelSet(*nftables.Set)
	FlushSet(*nftables.Set)
	SetAddElements(*nftables.Set, []nftables.SetElement) error
	SetDeleteElements(*nftables.Set, []nftables.SetElement) error
	AddObj(nftables.Obj) nftables.Obj
	DeleteObject(nftables.Obj)
	AddChain(*nftables.Chain) *nftables.Chain
	FlushChain(*nftables.Chain)
	DelChain(*nftables.Chain)
	AddRule(*nftables.Rule) *nftables.Rule
	InsertRule(*nftables.Rule) *nftables.Rule
	DelRule(*nftables.Rule) error
}

// wire writes the messages of one Apply transaction straight into the
// buffer that is sent: chains, rules, counters and set elements, which
// are nearly all of a large transaction, in the library's encoding
// (TestWireIsLibrary holds every byte to it); tables, sets and what wire
// does not know through the library itself, whose messages are moved
// into the buffer in order.
//
// Why not the library's Conn for all: at 50k entries it allocated 230 MB
// and took a third of a second for rules, chains and counters (each
// attribute a slice of its own, marshalled, copied into the rule, the
// rule copied into the batch), then the batch writer copied every
// message again, and the library read an acknowledgement for each of
// 160k messages.
type wire struct {
	buf  []byte  // the batch: its begin message, then one message after another
	offs []int32 // where each message after the begin starts in buf; its sequence is its index + 2
	echo func(chain string) bool

	lib     *nftables.Conn // encodes what wire does not
	libMsgs int            // messages queued in lib, not yet in buf
	counter []byte         // the data of a counter object at zero
	err     error          // the first error; nothing is sent after one
}

const (
	wireBegin = 1 // the sequence of the batch's begin message
	nlaHdr    = 4
	nlmsgHdr  = 16
)

// wireCheck, set by the package's tests, sees each transaction's wire
// and can queue the same transaction again into another writer.
var wireCheck func(w *wire, queue func(txnWriter) error, echo func(chain string) bool)

// wireSize is what the batch of a transaction of n messages (messagesOf)
// takes, about: all of them when the kernel's table is not known (the
// first apply), else a change's.
func wireSize(n int, known map[string]chainSync) int {
	if known != nil {
		return 64 << 10
	}
	return 192 * n
}

func newWire(echo func(chain string) bool, sizeHint int) *wire {
	w := &wire{buf: make([]byte, 0, sizeHint), echo: echo}
	w.buf = appendControl(w.buf, unix.NFNL_MSG_BATCH_BEGIN, wireBegin)
	lib, err := nftables.New(nftables.WithTestDial(w.capture))
	w.lib, w.err = lib, err
	return w
}

func appendHeader(b []byte, typ uint16, flags netlink.HeaderFlags, seq uint32) []byte {
	b = binary.NativeEndian.AppendUint32(b, 0) // length, when the message is complete
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, uint16(flags))
	b = binary.NativeEndian.AppendUint32(b, seq)
	return binary.NativeEndian.AppendUint32(b, 0) // port id: the kernel takes the socket's
}

// appendControl appends the batch's begin or end message.
func appendControl(b []byte, typ uint16, seq uint32) []byte {
	off := len(b)
	b = appendHeader(b, typ, netlink.Request, seq)
	b = append(b, unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, unix.NFNL_SUBSYS_NFTABLES)
	putLen(b, off)
	return b
}

// putLen completes the message that starts at off.
func putLen(b []byte, off int) {
	binary.NativeEndian.PutUint32(b[off:], uint32(len(b)-off))
}

// begin starts a message of subsystem nftables; flags are the library's
// without its acknowledgement (only the batch's last message asks one).
func (w *wire) begin(msg int, flags netlink.HeaderFlags, family nftables.TableFamily) int {
	w.moveLib()
	off := w.header(uint16(unix.NFNL_SUBSYS_NFTABLES<<8|msg), flags|netlink.Request)
	w.buf = append(w.buf, byte(family), unix.NFNETLINK_V0, 0, 0)
	return off
}

// header starts the next message of the batch with its header, without
// an acknowledgement, and returns where it starts.
func (w *wire) header(typ uint16, flags netlink.HeaderFlags) int {
	off := len(w.buf)
	w.offs = append(w.offs, int32(off))
	w.buf = appendHeader(w.buf, typ, flags&^netlink.Acknowledge, uint32(len(w.offs)+wireBegin))
	return off
}

func (w *wire) attr(typ uint16, data []byte) {
	w.fits(len(data))
	w.buf = binary.NativeEndian.AppendUint16(w.buf, uint16(nlaHdr+len(data)))
	w.buf = binary.NativeEndian.AppendUint16(w.buf, typ)
	w.buf = append(w.buf, data...)
	w.pad()
}

func (w *wire) str(typ uint16, s string) {
	w.fits(len(s) + 1)
	w.buf = binary.NativeEndian.AppendUint16(w.buf, uint16(nlaHdr+len(s)+1))
	w.buf = binary.NativeEndian.AppendUint16(w.buf, typ)
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, 0)
	w.pad()
}

func (w *wire) u32(typ uint16, v uint32) {
	w.buf = binary.NativeEndian.AppendUint16(w.buf, nlaHdr+4)
	w.buf = binary.NativeEndian.AppendUint16(w.buf, typ)
	w.buf = binary.BigEndian.AppendUint32(w.buf, v)
}

func (w *wire) u64(typ uint16, v uint64) {
	w.buf = binary.NativeEndian.AppendUint16(w.buf, nlaHdr+8)
	w.buf = binary.NativeEndian.AppendUint16(w.buf, typ)
	w.buf = binary.BigEndian.AppendUint64(w.buf, v)
}

func (w *wire) pad() {
	for len(w.buf)%4 != 0 {
		w.buf = append(w.buf, 0)
	}
}

// nest starts a nested attribute; unnest completes it.
func (w *wire) nest(typ uint16) int {
	off := len(w.buf)
	w.buf = binary.NativeEndian.AppendUint16(w.buf, 0)
	w.buf = binary.NativeEndian.AppendUint16(w.buf, unix.NLA_F_NESTED|typ)
	return off
}

func (w *wire) unnest(off int) {
	n := len(w.buf) - off
	w.fits(n - nlaHdr)
	binary.NativeEndian.PutUint16(w.buf[off:], uint16(n))
}

// fits fails the batch when an attribute's data of n bytes is more than
// its 16-bit length can say (the library would wrap the length).
func (w *wire) fits(n int) {
	if n > 0xffff-nlaHdr {
		w.fail(fmt.Errorf("message %d: netlink attribute of %d bytes", len(w.offs)+wireBegin, n+nlaHdr))
	}
}

func (w *wire) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

func (w *wire) end(off int) { putLen(w.buf, off) }

func (w *wire) AddChain(c *nftables.Chain) *nftables.Chain {
	off := w.begin(unix.NFT_MSG_NEWCHAIN, netlink.Create, c.Table.Family)
	w.str(unix.NFTA_CHAIN_TABLE, c.Table.Name)
	w.str(unix.NFTA_CHAIN_NAME, c.Name)
	if c.Hooknum != nil && c.Priority != nil {
		h := w.nest(unix.NFTA_CHAIN_HOOK)
		w.u32(unix.NFTA_HOOK_HOOKNUM, uint32(*c.Hooknum))
		w.u32(unix.NFTA_HOOK_PRIORITY, uint32(*c.Priority))
		if c.Device != "" {
			w.str(unix.NFTA_HOOK_DEV, c.Device)
		}
		w.unnest(h)
	}
	if c.Policy != nil {
		w.u32(unix.NFTA_CHAIN_POLICY, uint32(*c.Policy))
	}
	if c.Type != "" {
		w.str(unix.NFTA_CHAIN_TYPE, string(c.Type))
	}
	w.end(off)
	return c
}

func (w *wire) chainOp(msg int, c *nftables.Chain, nameAttr uint16) {
	off := w.begin(msg, 0, c.Table.Family)
	w.str(1, c.Table.Name) // NFTA_RULE_TABLE and NFTA_CHAIN_TABLE
	w.str(nameAttr, c.Name)
	w.end(off)
}

func (w *wire) FlushChain(c *nftables.Chain) {
	w.chainOp(unix.NFT_MSG_DELRULE, c, unix.NFTA_RULE_CHAIN)
}

func (w *wire) DelChain(c *nftables.Chain) {
	w.chainOp(unix.NFT_MSG_DELCHAIN, c, unix.NFTA_CHAIN_NAME)
}

func (w *wire) DelRule(r *nftables.Rule) error {
	if r.Handle == 0 {
		return fmt.Errorf("rule's handle cannot be 0")
	}
	off := w.begin(unix.NFT_MSG_DELRULE, 0, r.Table.Family)
	w.str(unix.NFTA_RULE_TABLE, r.Table.Name)
	w.str(unix.NFTA_RULE_CHAIN, r.Chain.Name)
	w.u64(unix.NFTA_RULE_HANDLE, r.Handle)
	w.end(off)
	return nil
}

func (w *wire) AddRule(r *nftables.Rule) *nftables.Rule {
	if r.Handle != 0 {
		w.rule(r, netlink.Replace|unix.NLM_F_REPLACE)
	} else {
		w.rule(r, netlink.Create|unix.NLM_F_APPEND)
	}
	return r
}

func (w *wire) InsertRule(r *nftables.Rule) *nftables.Rule {
	if r.Handle != 0 {
		w.rule(r, netlink.Replace|unix.NLM_F_REPLACE) // as the library: a replace
	} else {
		w.rule(r, netlink.Create)
	}
	return r
}

func (w *wire) rule(r *nftables.Rule, flags netlink.HeaderFlags) {
	if w.echo == nil || w.echo(r.Chain.Name) {
		flags |= unix.NLM_F_ECHO
	}
	off := w.begin(unix.NFT_MSG_NEWRULE, flags, r.Table.Family)
	w.str(unix.NFTA_RULE_TABLE, r.Table.Name)
	w.str(unix.NFTA_RULE_CHAIN, r.Chain.Name)
	if r.Handle != 0 {
		w.u64(unix.NFTA_RULE_HANDLE, r.Handle)
	}
	list := w.nest(unix.NFTA_RULE_EXPRESSIONS)
	for _, e := range r.Exprs {
		switch e.(type) {
		case *expr.Match, *expr.Target:
			// Why: the library adds compat attributes for these; we use none.
			w.fail(fmt.Errorf("chain %s: xtables expression %T", r.Chain.Name, e))
			return
		}
		el := w.nest(unix.NFTA_LIST_ELEM)
		w.expr(byte(r.Table.Family), e)
		w.unnest(el)
	}
	w.unnest(list)
	if r.UserData != nil {
		w.attr(unix.NFTA_RULE_USERDATA, r.UserData)
	}
	if r.Position != 0 || r.Flags&(1<<unix.NFTA_RULE_POSITION) != 0 {
		w.u64(unix.NFTA_RULE_POSITION, r.Position)
	}
	w.end(off)
}

func (w *wire) AddObj(o nftables.Obj) nftables.Obj {
	c, ok := o.(*nftables.CounterObj)
	if !ok {
		w.libMsgs++
		return w.lib.AddObj(o)
	}
	fam := c.Table.Family
	data := w.counter
	if c.Bytes != 0 || c.Packets != 0 || data == nil {
		var err error
		if data, err = expr.MarshalExprData(byte(fam), &expr.Counter{Bytes: c.Bytes, Packets: c.Packets}); err != nil {
			w.fail(err)
			return o
		}
		if c.Bytes == 0 && c.Packets == 0 {
			w.counter = data
		}
	}
	off := w.begin(unix.NFT_MSG_NEWOBJ, netlink.Create, fam)
	w.str(unix.NFTA_OBJ_TABLE, c.Table.Name)
	w.str(unix.NFTA_OBJ_NAME, c.Name)
	w.u32(unix.NFTA_OBJ_TYPE, uint32(nftables.ObjTypeCounter))
	if len(data) > 0 {
		w.attr(unix.NLA_F_NESTED|unix.NFTA_OBJ_DATA, data)
	}
	w.end(off)
	return o
}

// DeleteObject deletes a counter or a named object (what reading a table
// gives) itself, others through the library.
func (w *wire) DeleteObject(o nftables.Obj) {
	var t *nftables.Table
	var name string
	var typ nftables.ObjType
	switch o := o.(type) {
	case *nftables.CounterObj:
		t, name, typ = o.Table, o.Name, nftables.ObjTypeCounter
	case *nftables.NamedObj:
		t, name, typ = o.Table, o.Name, o.Type
	default:
		w.libMsgs++
		w.lib.DeleteObject(o)
		return
	}
	off := w.begin(unix.NFT_MSG_DELOBJ, 0, t.Family)
	w.str(unix.NFTA_OBJ_TABLE, t.Name)
	w.str(unix.NFTA_OBJ_NAME, name)
	w.u32(unix.NFTA_OBJ_TYPE, uint32(typ))
	w.attr(unix.NLA_F_NESTED|unix.NFTA_OBJ_DATA, nil)
	w.end(off)
}

// Tables and sets: the library's encoding, moved into buf
// before the next message of wire's own.

func (w *wire) AddTable(t *nftables.Table) *nftables.Table {
	w.libMsgs++
	return w.lib.AddTable(t)
}

func (w *wire) AddSet(s *nftables.Set, el []nftables.SetElement) error {
	w.libMsgs++
	if !isCounterMap(s) {
		return w.lib.AddSet(s, el)
	}
	if len(el) > 0 {
		return fmt.Errorf("counter map %s: created with elements", s.Name)
	}
	if err := w.lib.AddSet(s, nil); err != nil {
		return err
	}
	w.moveLib()
	w.objectMap(w.offs[len(w.offs)-1], unix.NFT_OBJECT_COUNTER)
	return nil
}

// objectMap makes the set that the message at off creates (the library's
// encoding of an interval set) an object map of objects of type typ:
// NFT_SET_OBJECT in its flags, and NFTA_SET_OBJ_TYPE, as nft sends for
// `map M { type K : counter; flags interval; }`.
func (w *wire) objectMap(off int32, typ uint32) {
	msg := w.buf[off:]
	flags := false
	for at := nlmsgHdr + 4; at+nlaHdr <= len(msg); {
		n := int(binary.NativeEndian.Uint16(msg[at:]))
		if n < nlaHdr || at+n > len(msg) {
			break
		}
		if binary.NativeEndian.Uint16(msg[at+2:])&^uint16(unix.NLA_F_NESTED) == unix.NFTA_SET_FLAGS && n == nlaHdr+4 {
			v := msg[at+nlaHdr:]
			binary.BigEndian.PutUint32(v, binary.BigEndian.Uint32(v)|unix.NFT_SET_OBJECT)
			flags = true
		}
		at += (n + 3) &^ 3
	}
	if !flags {
		w.fail(errors.New("object map: the library's set has no flags"))
		return
	}
	w.u32(unix.NFTA_SET_OBJ_TYPE, typ)
	w.end(int(off))
}

func (w *wire) DelSet(s *nftables.Set) {
	w.libMsgs++
	w.lib.DelSet(s)
}

func (w *wire) FlushSet(s *nftables.Set) {
	w.libMsgs++
	w.lib.FlushSet(s)
}

// moveLib moves the messages queued in lib into buf (lib's Flush hands
// them to capture).
func (w *wire) moveLib() {
	if w.libMsgs == 0 {
		return
	}
	w.libMsgs = 0
	if err := w.lib.Flush(); err != nil {
		w.fail(err)
	}
}

// capture is lib's socket: it appends each message of the batch lib
// flushes, and acknowledges each that asked for it.
func (w *wire) capture(req []netlink.Message) ([]netlink.Message, error) {
	var sent []netlink.Message
	for _, m := range req {
		if t := m.Header.Type; t == unix.NFNL_MSG_BATCH_BEGIN || t == unix.NFNL_MSG_BATCH_END {
			continue
		}
		off := w.header(uint16(m.Header.Type), m.Header.Flags)
		w.buf = append(w.buf, m.Data...)
		w.pad()
		putLen(w.buf, off)
		sent = append(sent, m)
	}
	return acks(sent), nil
}

// acks returns what the library expects for the messages of req that
// asked for an acknowledgement: a success each.
func acks(req []netlink.Message) []netlink.Message {
	var out []netlink.Message
	for _, m := range req {
		if m.Header.Flags&netlink.Acknowledge == 0 {
			continue
		}
		ack := make([]byte, 4, 20) // error 0, then the request's header
		ack = binary.NativeEndian.AppendUint32(ack, uint32(nlmsgHdr+len(m.Data)))
		ack = binary.NativeEndian.AppendUint16(ack, uint16(m.Header.Type))
		ack = binary.NativeEndian.AppendUint16(ack, uint16(m.Header.Flags))
		ack = binary.NativeEndian.AppendUint32(ack, m.Header.Sequence)
		ack = binary.NativeEndian.AppendUint32(ack, m.Header.PID)
		out = append(out, netlink.Message{Header: netlink.Header{Type: netlink.Error, Sequence: m.Header.Sequence}, Data: ack})
	}
	return out
}

// ready moves what lib holds into buf and returns the first error in
// making the batch (nil: it can be sent).
func (w *wire) ready() error {
	w.moveLib()
	return w.err
}

// finish ends the batch and has its last message acknowledged; it
// returns the batch and the sequences of its last message and its end.
func (w *wire) finish() (buf []byte, last, end uint32, err error) {
	if err := w.ready(); err != nil {
		return nil, 0, 0, err
	}
	if len(w.offs) == 0 {
		return nil, 0, 0, nil
	}
	lastOff := int(w.offs[len(w.offs)-1])
	flags := binary.NativeEndian.Uint16(w.buf[lastOff+6:])
	binary.NativeEndian.PutUint16(w.buf[lastOff+6:], flags|uint16(netlink.Acknowledge))
	last, end = uint32(len(w.offs)+wireBegin), uint32(len(w.offs)+wireBegin+1)
	w.buf = appendControl(w.buf, unix.NFNL_MSG_BATCH_END, end)
	return w.buf, last, end, nil
}

// describe names the message of sequence seq for an error: what it does
// and to what.
func (w *wire) describe(seq uint32) string {
	i := int(seq) - wireBegin - 1
	if i < 0 || i >= len(w.offs) {
		return fmt.Sprintf("message %d", seq)
	}
	m := w.buf[w.offs[i]:]
	m = m[:binary.NativeEndian.Uint32(m)]
	typ := binary.NativeEndian.Uint16(m[4:]) & 0xff
	what, nameAttr := wireOps[typ].what, wireOps[typ].name
	if what == "" {
		what = fmt.Sprintf("nftables message %d", typ)
	}
	if name := attrOf(m[nlmsgHdr:], nameAttr); len(name) > 1 {
		return what + " " + string(name[:len(name)-1])
	}
	return what
}

// attrOf returns the value of the first top-level attribute typ of a
// message's data (after its nfgenmsg), nil if it has none.
func attrOf(data []byte, typ uint16) []byte {
	if len(data) < 4 {
		return nil
	}
	for a := data[4:]; len(a) >= nlaHdr; {
		n := int(binary.NativeEndian.Uint16(a))
		if n < nlaHdr || n > len(a) {
			return nil
		}
		if binary.NativeEndian.Uint16(a[2:])&^unix.NLA_F_NESTED == typ {
			return a[nlaHdr:n]
		}
		a = a[min(len(a), (n+3)&^3):]
	}
	return nil
}

var wireOps = map[uint16]struct {
	what string
	name uint16
}{
	unix.NFT_MSG_NEWTABLE:   {"add table", unix.NFTA_TABLE_NAME},
	unix.NFT_MSG_NEWCHAIN:   {"add chain", unix.NFTA_CHAIN_NAME},
	unix.NFT_MSG_DELCHAIN:   {"delete chain", unix.NFTA_CHAIN_NAME},
	unix.NFT_MSG_NEWRULE:    {"add rule to chain", unix.NFTA_RULE_CHAIN},
	unix.NFT_MSG_DELRULE:    {"delete rules of chain", unix.NFTA_RULE_CHAIN},
	unix.NFT_MSG_NEWSET:     {"add set", unix.NFTA_SET_NAME},
	unix.NFT_MSG_DELSET:     {"delete set", unix.NFTA_SET_NAME},
	unix.NFT_MSG_NEWSETELEM: {"add elements to set", unix.NFTA_SET_ELEM_LIST_SET},
	unix.NFT_MSG_DELSETELEM: {"delete elements of set", unix.NFTA_SET_ELEM_LIST_SET},
	unix.NFT_MSG_NEWOBJ:     {"add object", unix.NFTA_OBJ_NAME},
	unix.NFT_MSG_DELOBJ:     {"delete object", unix.NFTA_OBJ_NAME},
}

// kernelErrors names each error the kernel answered, in sequence order.
func (w *wire) kernelErrors(errs map[uint32]netlink.Message) error {
	var all []error
	for seq := uint32(wireBegin); seq <= uint32(len(w.offs)+wireBegin+1); seq++ {
		m, ok := errs[seq]
		if !ok {
			continue
		}
		code := errnoOf(m)
		if seq == wireBegin || int(seq) > len(w.offs)+wireBegin {
			all = append(all, fmt.Errorf("batch: %w", code))
			continue
		}
		all = append(all, fmt.Errorf("%s: %w", w.describe(seq), code))
	}
	return errors.Join(all...)
}

// errnoOf is the error of an answer (0: an acknowledgement).
func errnoOf(m netlink.Message) unix.Errno {
	if len(m.Data) < 4 {
		return 0
	}
	return unix.Errno(-int32(binary.NativeEndian.Uint32(m.Data[:4])))
}
