package nft

import (
	"fmt"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// expr appends e's attributes (its name and data) as expr.Marshal does:
// the expressions nearly every rule has are written here, the others by
// the library (TestWireIsLibrary holds both to it).
func (w *wire) expr(fam byte, e expr.Any) {
	switch e := e.(type) {
	case *expr.Meta:
		w.keyed("meta", unix.NFTA_META_KEY, uint32(e.Key), unix.NFTA_META_SREG, unix.NFTA_META_DREG, e.SourceRegister, e.Register)
	case *expr.Ct:
		switch e.Key {
		case expr.CtKeySRC, expr.CtKeyDST, expr.CtKeyPROTOSRC, expr.CtKeyPROTODST:
			w.libExpr(fam, e) // with a direction
			return
		}
		w.keyed("ct", unix.NFTA_CT_KEY, uint32(e.Key), unix.NFTA_CT_SREG, unix.NFTA_CT_DREG, e.SourceRegister, e.Register)
	case *expr.Cmp:
		d := w.exprHead("cmp")
		w.u32(unix.NFTA_CMP_SREG, e.Register)
		w.u32(unix.NFTA_CMP_OP, uint32(e.Op))
		v := w.nest(unix.NFTA_CMP_DATA)
		w.attr(unix.NFTA_DATA_VALUE, e.Data)
		w.unnest(v)
		w.unnest(d)
	case *expr.Payload:
		if e.OperationType == expr.PayloadWrite || e.CsumType > 0 {
			w.libExpr(fam, e)
			return
		}
		d := w.exprHead("payload")
		w.u32(unix.NFTA_PAYLOAD_DREG, e.DestRegister)
		w.u32(unix.NFTA_PAYLOAD_BASE, uint32(e.Base))
		w.u32(unix.NFTA_PAYLOAD_OFFSET, e.Offset)
		w.u32(unix.NFTA_PAYLOAD_LEN, e.Len)
		w.unnest(d)
	case *expr.Lookup:
		d := w.exprHead("lookup")
		if e.SourceRegister != 0 {
			w.u32(unix.NFTA_LOOKUP_SREG, e.SourceRegister)
		}
		if e.IsDestRegSet {
			w.u32(unix.NFTA_LOOKUP_DREG, e.DestRegister)
		}
		if e.Invert {
			w.u32(unix.NFTA_LOOKUP_FLAGS, unix.NFT_LOOKUP_F_INV)
		}
		w.str(unix.NFTA_LOOKUP_SET, e.SetName)
		w.u32(unix.NFTA_LOOKUP_SET_ID, e.SetID)
		w.unnest(d)
	case *objrefMap:
		d := w.exprHead("objref")
		w.u32(unix.NFTA_OBJREF_SET_SREG, e.Register)
		w.str(unix.NFTA_OBJREF_SET_NAME, e.Set)
		w.unnest(d)
	case *expr.Objref:
		d := w.exprHead("objref")
		w.u32(unix.NFTA_OBJREF_IMM_TYPE, uint32(e.Type))
		w.attr(unix.NFTA_OBJREF_IMM_NAME, []byte(e.Name)) // no NUL, as the library
		w.unnest(d)
	case *expr.Verdict:
		d := w.exprHead("immediate")
		w.u32(unix.NFTA_IMMEDIATE_DREG, unix.NFT_REG_VERDICT)
		imm := w.nest(unix.NFTA_IMMEDIATE_DATA)
		v := w.nest(unix.NFTA_DATA_VERDICT)
		w.u32(unix.NFTA_VERDICT_CODE, uint32(e.Kind))
		if e.Chain != "" {
			w.str(unix.NFTA_VERDICT_CHAIN, e.Chain)
		}
		w.unnest(v)
		w.unnest(imm)
		w.unnest(d)
	default:
		w.libExpr(fam, e)
	}
}

// keyed appends a meta or ct expression: its key, then the register it
// loads into or stores from.
func (w *wire) keyed(name string, keyAttr uint16, key uint32, sreg, dreg uint16, source bool, reg uint32) {
	d := w.exprHead(name)
	w.u32(keyAttr, key)
	if source {
		w.u32(sreg, reg)
	} else {
		w.u32(dreg, reg)
	}
	w.unnest(d)
}

// exprHead appends an expression's name and starts its data.
func (w *wire) exprHead(name string) int {
	w.str(unix.NFTA_EXPR_NAME, name)
	return w.nest(unix.NFTA_EXPR_DATA)
}

func (w *wire) libExpr(fam byte, e expr.Any) {
	b, err := expr.Marshal(fam, e)
	if err != nil {
		w.fail(err)
		return
	}
	w.buf = append(w.buf, b...)
}

func (w *wire) SetAddElements(s *nftables.Set, el []nftables.SetElement) error {
	return w.elements(unix.NFT_MSG_NEWSETELEM, s, el)
}

func (w *wire) SetDeleteElements(s *nftables.Set, el []nftables.SetElement) error {
	return w.elements(unix.NFT_MSG_DELSETELEM, s, el)
}

// elements appends the message that adds or deletes el, as the library's
// makeElemList encodes it (flags included: Create, on deletion too).
func (w *wire) elements(msg int, s *nftables.Set, el []nftables.SetElement) error {
	if isCounterMap(s) && slices.ContainsFunc(el, func(e nftables.SetElement) bool { return e.Comment != "" }) {
		return fmt.Errorf("counter map %s: elements with comments", s.Name)
	}
	if s.Anonymous || slices.ContainsFunc(el, func(e nftables.SetElement) bool { return e.Comment != "" }) {
		// Refused by the library, or with user data: the library's.
		w.libMsgs++
		if msg == unix.NFT_MSG_NEWSETELEM {
			return w.lib.SetAddElements(s, el)
		}
		return w.lib.SetDeleteElements(s, el)
	}
	off := w.begin(msg, unix.NLM_F_CREATE, s.Table.Family)
	w.str(unix.NFTA_SET_ELEM_LIST_SET, s.Name)
	w.u32(unix.NFTA_SET_ELEM_LIST_SET_ID, s.ID)
	w.str(unix.NFTA_SET_ELEM_LIST_TABLE, s.Table.Name)
	list := w.nest(unix.NFTA_SET_ELEM_LIST_ELEMENTS)
	for i, v := range el {
		item := w.nest(uint16(i + 1))
		if v.IntervalEnd {
			// Why NESTED: the library sets it on this flat attribute.
			w.u32(unix.NFTA_SET_ELEM_FLAGS|unix.NLA_F_NESTED, unix.NFT_SET_ELEM_INTERVAL_END)
		}
		k := w.nest(unix.NFTA_SET_ELEM_KEY)
		w.attr(unix.NFTA_DATA_VALUE, v.Key)
		w.unnest(k)
		if len(v.KeyEnd) > 0 {
			k := w.nest(nftables.NFTA_SET_ELEM_KEY_END)
			w.attr(unix.NFTA_DATA_VALUE, v.KeyEnd)
			w.unnest(k)
		}
		if s.HasTimeout && v.Timeout != 0 {
			w.u64(unix.NFTA_SET_ELEM_TIMEOUT, uint64(v.Timeout.Milliseconds()))
		}
		switch {
		case isCounterMap(s):
			if msg == unix.NFT_MSG_NEWSETELEM {
				w.str(unix.NFTA_SET_ELEM_OBJREF, string(v.Val))
			}
		case v.VerdictData != nil:
			d := w.nest(unix.NFTA_SET_ELEM_DATA)
			vd := w.nest(unix.NFTA_DATA_VERDICT)
			w.u32(unix.NFTA_VERDICT_CODE, uint32(v.VerdictData.Kind))
			if v.VerdictData.Chain != "" {
				w.str(unix.NFTA_VERDICT_CHAIN, v.VerdictData.Chain)
			}
			w.unnest(vd)
			w.unnest(d)
		case len(v.Val) > 0:
			d := w.nest(unix.NFTA_SET_ELEM_DATA)
			w.attr(unix.NFTA_DATA_VALUE, v.Val)
			w.unnest(d)
		}
		w.unnest(item)
	}
	w.unnest(list)
	w.end(off)
	return nil
}
