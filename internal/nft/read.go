package nft

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// tableState is what the kernel holds in our table now.
type tableState struct {
	exists bool
	flags  uint32 // NFTA_TABLE_FLAGS (dormant, ...)
	chains map[string]*nftables.Chain
	sets   map[string]*nftables.Set
	objs   map[string]*nftables.NamedObj
	// maps are the classification maps whose elements are known (as
	// applied); a map missing here holds elements not known.
	maps map[string]*VMap
}

// readTable reads the chains, sets and named objects of table inet NAME. A
// missing table reads as empty. Only this table is looked at.
func readTable(c *nftables.Conn, name string) (*tableState, error) {
	st := &tableState{
		chains: map[string]*nftables.Chain{},
		sets:   map[string]*nftables.Set{},
		objs:   map[string]*nftables.NamedObj{},
	}
	t, err := findTable(c, name)
	if err != nil || t == nil {
		return st, err
	}
	// Why the byte swap: google/nftables v0.3.0 decodes NFTA_TABLE_FLAGS,
	// a big-endian attribute, in host byte order.
	st.exists, st.flags = true, binary.BigEndian.Uint32(binary.NativeEndian.AppendUint32(nil, t.Flags))
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	for _, ch := range chains {
		if ch.Table != nil && ch.Table.Name == name {
			ch.Table = t
			st.chains[ch.Name] = ch
		}
	}
	sets, err := c.GetSets(t)
	if err != nil {
		return nil, fmt.Errorf("list sets: %w", err)
	}
	for _, s := range sets {
		s.Table = t
		st.sets[s.Name] = s
	}
	objMaps, err := objectMaps(c, name)
	if err != nil {
		return nil, err
	}
	for name := range objMaps {
		if s := st.sets[name]; s != nil && !s.IsMap {
			s.DataType = counterObjects // what the library does not read (isCounterMap)
		}
	}
	// Why GetNamedObjects: GetObjects fails on object types other than
	// counters and quotas.
	objs, err := c.GetNamedObjects(t)
	if err != nil {
		return nil, fmt.Errorf("list objects: %w", err)
	}
	for _, o := range objs {
		if no, ok := o.(*nftables.NamedObj); ok {
			no.Table = t
			st.objs[no.Name] = no
		}
	}
	return st, nil
}

// findTable returns table inet NAME, or nil when it does not exist.
func findTable(c *nftables.Conn, name string) (*nftables.Table, error) {
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == name {
			return t, nil
		}
	}
	return nil, nil
}

// Counters returns the named counters of the table by name. A missing table
// has no counters.
func (a *Applier) Counters() (map[string]CounterValue, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := a.readConn()
	if err != nil {
		return nil, err
	}
	t, err := findTable(c, a.table)
	if err != nil || t == nil {
		return map[string]CounterValue{}, err
	}
	objs, err := c.GetNamedObjects(t)
	if err != nil {
		return nil, fmt.Errorf("read counters of table inet %s: %w", a.table, err)
	}
	out := map[string]CounterValue{}
	for _, o := range objs {
		if name, v, ok := counterValue(o); ok {
			out[name] = v
		}
	}
	return out, nil
}

// counterValue is a named counter object's name and value (ok false for
// any other object).
func counterValue(o nftables.Obj) (string, CounterValue, bool) {
	no, ok := o.(*nftables.NamedObj)
	if !ok || no.Type != nftables.ObjTypeCounter {
		return "", CounterValue{}, false
	}
	ctr, ok := no.Obj.(*expr.Counter)
	if !ok {
		return "", CounterValue{}, false
	}
	return no.Name, CounterValue{Packets: ctr.Packets, Bytes: ctr.Bytes}, true
}

// manyCounters is how many named counters CounterValues reads one by one;
// more are read in one dump of them all.
const manyCounters = 64

// noEntry reports whether err is the kernel's ENOENT: google/nftables
// v0.3.0 wraps an object read's error with %v, so only its text is left.
func noEntry(err error) bool {
	return errors.Is(err, unix.ENOENT) || strings.HasSuffix(err.Error(), unix.ENOENT.Error())
}

// CounterValues returns the values of the named counters the table holds.
func (a *Applier) CounterValues(names []string) (map[string]CounterValue, error) {
	if len(names) > manyCounters {
		all, err := a.Counters()
		if err != nil {
			return nil, err
		}
		out := make(map[string]CounterValue, len(names))
		for _, n := range names {
			if v, ok := all[n]; ok {
				out[n] = v
			}
		}
		return out, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := a.readConn()
	if err != nil {
		return nil, err
	}
	t := &nftables.Table{Name: a.table, Family: nftables.TableFamilyINet}
	out := make(map[string]CounterValue, len(names))
	for _, n := range names {
		o, err := c.GetObject(&nftables.NamedObj{Table: t, Name: n, Type: nftables.ObjTypeCounter})
		if err != nil {
			if noEntry(err) {
				continue // not in the table
			}
			return nil, fmt.Errorf("read counter %s of table inet %s: %w", n, a.table, err)
		}
		if _, v, ok := counterValue(o); ok {
			out[n] = v
		}
	}
	return out, nil
}

// InSync reports whether the table in the kernel still holds exactly rs:
// the same chains with the same hooks, the same sets and counters, and in
// every chain the same rules in the same order (compared by comment and by
// their netlink expressions, with counter values left out). The agent
// re-applies when it is false (drift repair).
func (a *Applier) InSync(rs *Ruleset) (bool, error) {
	d, err := a.Drift(rs)
	return d == "" && err == nil, err
}

// Drift describes the first difference between the table in the kernel and
// rs ("table missing", "chain acl_in: 3 rules, want 4", ...), or returns ""
// when the kernel holds exactly rs. Use it to log why a repair happens.
//
// When no nftables transaction was committed in the namespace since the
// Applier last saw the table hold rs (the ruleset generation is the same),
// Drift answers without reading the rules back. Rulesets are values: do not
// change one after passing it to Apply, InSync or Drift.
func (a *Applier) Drift(rs *Ruleset) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := a.readConn()
	if err != nil {
		return "", err
	}
	gen, genErr := generation(c)
	if genErr == nil {
		a.loadState(c, gen)
	}
	if genErr == nil && a.sync.ok && a.sync.gen == gen && a.sync.same(rs, func() *digest { return a.digestOf(rs) }) {
		return "", nil
	}
	if a.sync.ok && genErr == nil && a.sync.gen != gen {
		a.foreign++ // someone else committed since we last knew the table
	}
	a.sync = synced{}
	chains := map[string]chainSync{}
	dg := a.digestOf(rs)
	d, err := diff(c, rs, dg, chains)
	if err != nil {
		return "", fmt.Errorf("read table inet %s: %w", rs.Table, err)
	}
	if d == "" && genErr == nil {
		a.sync = newSynced(gen, rs, dg, chains, nil)
		a.saveState(c, true)
	}
	return d, nil
}

// diff describes the first difference between the kernel's table and rs,
// or returns "" when there is none. It adds to chains the rules and
// handles of each chain it found in sync.
func diff(c *nftables.Conn, rs *Ruleset, dg *digest, chains map[string]chainSync) (string, error) {
	cur, err := readTable(c, rs.Table)
	if err != nil {
		return "", err
	}
	if !cur.exists {
		return "table missing", nil
	}
	if cur.flags&unix.NFT_TABLE_F_DORMANT != 0 {
		// A dormant table enforces nothing; Apply's NEWTABLE (flags 0)
		// wakes it.
		return "table dormant", nil
	}
	t := &nftables.Table{Name: rs.Table, Family: nftables.TableFamilyINet}
	if len(cur.chains) != len(rs.Chains) || len(cur.sets) != len(rs.Sets) || len(cur.objs) != len(rs.Counters) {
		return fmt.Sprintf("have %d chains, %d sets, %d objects; want %d, %d, %d",
			len(cur.chains), len(cur.sets), len(cur.objs), len(rs.Chains), len(rs.Sets), len(rs.Counters)), nil
	}
	for _, s := range rs.Sets {
		if have, ok := cur.sets[s.Name]; !ok || !sameSet(have, kernelSet(t, s)) {
			return "set " + s.Name + " missing or changed", nil
		}
		if s.Map != nil {
			if d, err := diffMap(c, t, s); d != "" || err != nil {
				return d, err
			}
		}
	}
	for _, name := range rs.Counters {
		if o, ok := cur.objs[name]; !ok || o.Type != nftables.ObjTypeCounter {
			return "counter " + name + " missing", nil
		}
	}
	for i, ch := range rs.Chains {
		have, ok := cur.chains[ch.Name]
		if !ok || !sameChain(have, kernelChain(t, ch)) {
			return "chain " + ch.Name + " missing or changed", nil
		}
		rules, err := c.GetRules(t, have)
		if err != nil {
			return "", fmt.Errorf("list rules of chain %s: %w", ch.Name, err)
		}
		if d := diffRules(ch, rules); d != "" {
			return "chain " + ch.Name + ": " + d, nil
		}
		cs := chainSync{sum: dg.chains[i], rules: make([]kernelRuleState, len(rules))}
		for i, r := range rules {
			cs.rules[i] = kernelRuleState{Key: keyOf(ch.Rules[i]), Handle: r.Handle}
		}
		chains[ch.Name] = cs
	}
	return "", nil
}

// diffRules compares the rules of one chain.
func diffRules(ch *Chain, rules []*nftables.Rule) string {
	if len(rules) != len(ch.Rules) {
		return fmt.Sprintf("%d rules, want %d", len(rules), len(ch.Rules))
	}
	for i, r := range ch.Rules {
		comment, _ := userdata.GetString(rules[i].UserData, userdata.TypeComment)
		if comment != r.Comment {
			return fmt.Sprintf("rule %d has comment %q, want %q", i+1, comment, r.Comment)
		}
		want := kernelRule(nil, nil, r)
		if !sameExprs(rules[i].Exprs, want.Exprs) {
			return fmt.Sprintf("rule %d (%s) changed", i+1, r.Comment)
		}
	}
	return ""
}

// sameExprs compares two expression lists by their netlink encoding, with
// the values of stateful expressions (counters, quotas) left out.
func sameExprs(have, want []expr.Any) bool {
	have, want = ReadBackAll(have), ReadBackAll(want)
	if len(have) != len(want) {
		return false
	}
	for i := range have {
		hb, herr := marshalStateless(have[i])
		wb, werr := marshalStateless(want[i])
		if herr != nil || werr != nil || !bytes.Equal(hb, wb) {
			return false
		}
	}
	return true
}

// ReadBack is how google/nftables v0.3.0 reads an expression back from the
// kernel: it ignores NFTA_CT_SREG, so a `ct set` (Ct with SourceRegister)
// reads back as a load into register 0, and an objref from a map as an
// empty Objref. Comparisons with what the kernel
// holds compare expressions in this form.
func ReadBack(e expr.Any) expr.Any {
	switch v := e.(type) {
	case *expr.Ct:
		if v.SourceRegister {
			return &expr.Ct{Key: v.Key, Direction: v.Direction}
		}
	case *objrefMap:
		return v.Objref // the library decodes neither register nor map
	}
	return e
}

// ReadBackAll is ReadBack for a rule's expressions, without the byteorder
// expressions (of meta hour and meta time) and the socket expressions (of
// the message guard, SocketMarkNeq), which google/nftables v0.3.0 does not
// decode (exprFromName knows neither): a rule read back from the kernel
// lacks them, so drift in them alone is not seen.
func ReadBackAll(exprs []expr.Any) []expr.Any {
	out := make([]expr.Any, 0, len(exprs))
	for _, e := range exprs {
		switch e.(type) {
		case *expr.Byteorder, *expr.Socket:
		default:
			out = append(out, ReadBack(e))
		}
	}
	return out
}

func marshalStateless(e expr.Any) ([]byte, error) {
	e = ReadBack(e)
	switch v := e.(type) {
	case *expr.Counter:
		e = &expr.Counter{}
	case *expr.Quota:
		q := *v
		q.Consumed = 0
		e = &q
	}
	return expr.Marshal(byte(nftables.TableFamilyINet), e)
}
