package nft

import (
	"fmt"
	"iter"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// queue adds the whole transaction to c, in an order the kernel accepts:
// creations, then flushes and rule deletions (after which no rule
// references anything stale), then deletions and re-creations, then the
// rules. known describes the chains the kernel is known to hold (nil when
// unknown), and was the ruleset value it holds when known (nil: not
// known); renew names limit sets to start afresh (see Applier.Apply).
func queue(c txnWriter, table string, cur *tableState, rs *Ruleset, d *digest, known map[string]chainSync, was *Ruleset, renew []string) (*txn, error) {
	tx := &txn{c: c, t: &nftables.Table{Name: table, Family: nftables.TableFamilyINet}, cur: cur, rs: rs, d: d, known: known}
	if known != nil {
		tx.delta = deltaOf(was, rs)
	}
	tx.plan(known, renew)
	c.AddTable(tx.t)
	if err := tx.addSetsAndCounters(); err != nil {
		return nil, err
	}
	if err := tx.addAndFlushChains(); err != nil {
		return nil, err
	}
	tx.flushStaleChains()
	// No rule references anything from here on, except those of kept chains,
	// which reference nothing that is deleted or re-created. Sets go before
	// chains: a depth map's elements reference its depth chains, and a
	// chain that an element jumps to cannot be deleted (EBUSY).
	if err := tx.deleteAndRecreateSetsAndObjects(); err != nil {
		return nil, err
	}
	// Elements of maps after the chains they jump to exist, before the
	// stale ones are deleted (a chain an element jumps to cannot be).
	if err := tx.syncMaps(); err != nil {
		return nil, err
	}
	tx.deleteStaleObjects()
	tx.deleteAndRecreateChains()
	tx.addRules()
	return tx, nil
}

// txn builds one Apply transaction.
type txn struct {
	c   txnWriter
	t   *nftables.Table
	cur *tableState
	rs  *Ruleset
	d   *digest

	recreateSets   []*Set
	refillSets     []*Set
	recreateObjs   []string
	recreateChains []*Chain
	staleChains    []*nftables.Chain
	staleSets      []string
	staleObjs      []string
	keep           []bool      // chains left as they are, in the order of rs.Chains
	delta          *delta      // what rs changes of the ruleset the kernel holds (nil: not known)
	table          *tableState // tableOf(rs) when made already (nil: not)
	known          map[string]chainSync
	edits          map[string]*chainEdit // chains changed rule by rule
	keys           map[string][]ruleKey  // keys of the rules of edited chains
}

// plan finds what exists with other properties and must be re-created,
// and which chains can be kept.
func (tx *txn) plan(known map[string]chainSync, renew []string) {
	again := tx.renewals(renew)
	for _, s := range tx.rs.Sets {
		have, ok := tx.cur.sets[s.Name]
		switch {
		case ok && !sameSet(have, kernelSet(tx.t, s)):
			// Why: AddSet of an existing set with other properties fails
			// the whole batch; such a set must be deleted and re-created
			// (its counts are lost, as with a new set name).
			tx.recreateSets = append(tx.recreateSets, s)
		case ok && s.Map != nil && tx.cur.maps[s.Name] == nil:
			// Why: the elements of a map read back are not known, and
			// emptying it in place removes them one by one, each in time
			// linear in the map (nft_pipapo_remove, bitmap_cut: 10 s for
			// the maps of a 50k-entry list); deleted, it goes at once
			// (a map holds no state: its counters are named objects).
			tx.recreateSets = append(tx.recreateSets, s)
		case ok && (again[s.Name] || again[s.Limit]):
			// Renewed: emptied and refilled as created (a closed gate).
			// Why not deleted and re-created: the kernel binds rules to
			// sets, so every rule that uses it would have to go too.
			tx.refillSets = append(tx.refillSets, s)
		}
	}
	for _, name := range tx.rs.Counters {
		if tx.delta != nil {
			break // the kernel holds our counters, and no other object
		}
		if o, ok := tx.cur.objs[name]; ok && o.Type != nftables.ObjTypeCounter {
			tx.recreateObjs = append(tx.recreateObjs, name)
		}
	}
	for i, ch := range tx.rs.Chains {
		if tx.delta != nil && tx.delta.same[i] {
			continue // held as it is
		}
		if have, ok := tx.cur.chains[ch.Name]; ok && (ch.Hook != nil || have.Hooknum != nil) && !sameChain(have, kernelChain(tx.t, ch)) {
			// Why: the kernel cannot change a chain's hook or type in place.
			tx.recreateChains = append(tx.recreateChains, ch)
		}
	}
	tx.keep, tx.edits, tx.keys = make([]bool, len(tx.rs.Chains)), map[string]*chainEdit{}, map[string][]ruleKey{}
	if known == nil || len(tx.recreateChains) > 0 {
		// A kept rule could jump to a chain that is re-created.
		return
	}
	// Why: the kernel binds rules to the sets and objects they use, and
	// one that a rule still uses cannot be deleted: every rule that uses
	// a re-created one is deleted and added again.
	again = map[string]bool{}
	for _, s := range tx.recreateSets {
		again[s.Name] = true
	}
	for _, name := range tx.recreateObjs {
		again[name] = true
	}
	for i, ch := range tx.rs.Chains {
		if tx.delta != nil && tx.delta.same[i] && len(again) == 0 {
			tx.keep[i] = true // the very chain the kernel holds, and nothing it uses is re-created
			continue
		}
		have, ok := known[ch.Name]
		if !ok || tx.cur.chains[ch.Name] == nil {
			continue
		}
		fresh := usesAny(ch, again)
		if have.sum == tx.d.chains[i] && fresh == nil {
			tx.keep[i] = true
			continue
		}
		if have.rules == nil {
			continue
		}
		keys := make([]ruleKey, len(ch.Rules))
		for i, r := range ch.Rules {
			keys[i] = keyOf(r)
		}
		if ed, ok := diffChain(have.rules, keys, fresh); ok {
			tx.edits[ch.Name], tx.keys[ch.Name] = &ed, keys
		}
	}
}

// usesAny marks the rules of ch that use a set or object named in names
// (nil when none does).
func usesAny(ch *Chain, names map[string]bool) []bool {
	if len(names) == 0 {
		return nil
	}
	var out []bool
	for i, r := range ch.Rules {
		if uses(r, names) {
			if out == nil {
				out = make([]bool, len(ch.Rules))
			}
			out[i] = true
		}
	}
	return out
}

func uses(r *Rule, names map[string]bool) bool {
	for _, st := range r.Stmts {
		for _, e := range st.Exprs() {
			switch v := e.(type) {
			case *expr.Lookup:
				if names[v.SetName] {
					return true
				}
			case *expr.Dynset:
				if names[v.SetName] {
					return true
				}
			case *expr.Objref:
				if names[v.Name] {
					return true
				}
			case *objrefMap:
				if names[v.Set] {
					return true
				}
			}
		}
	}
	return false
}

// renewals returns the limit sets to start afresh with their reservation
// objects: those asked for, and those of which the kernel holds some
// objects but not all (a gate or depth map deleted by someone else). A
// limit set whose gate is created closed must hold no count of its own:
// the agent counts every open session of the entry as old when it opens
// the gate, so the kernel's count and the reservations never overlap.
func (tx *txn) renewals(renew []string) map[string]bool {
	out := map[string]bool{}
	for _, name := range renew {
		out[name] = true
	}
	have, all := map[string]int{}, map[string]int{}
	for _, s := range tx.rs.Sets {
		limit := s.Limit
		if limit == "" {
			limit = s.Name
		}
		all[limit]++
		if _, ok := tx.cur.sets[s.Name]; ok {
			have[limit]++
		}
	}
	for limit, n := range have {
		if n < all[limit] {
			out[limit] = true
		}
	}
	return out
}

// addSetsAndCounters adds the sets and counters that do not exist yet.
// Existing ones are left alone: set elements hold the counts, counters the
// statistics.
func (tx *txn) addSetsAndCounters() error {
	for _, s := range tx.rs.Sets {
		if _, ok := tx.cur.sets[s.Name]; !ok {
			if err := tx.c.AddSet(kernelSet(tx.t, s), gateElements(s)); err != nil {
				return fmt.Errorf("add set %s: %w", s.Name, err)
			}
		}
	}
	counters := tx.rs.Counters
	if tx.delta != nil {
		counters = tx.delta.newCounters
	}
	for _, name := range counters {
		if _, ok := tx.cur.objs[name]; !ok {
			tx.c.AddObj(&nftables.CounterObj{Table: tx.t, Name: name})
		}
	}
	return nil
}

// addAndFlushChains adds every desired chain that is not kept (a no-op when
// it exists) and flushes it. A chain to be re-created is only flushed here;
// from a chain edited rule by rule, the stale rules are deleted.
func (tx *txn) addAndFlushChains() error {
	recreate := map[string]bool{}
	for _, ch := range tx.recreateChains {
		recreate[ch.Name] = true
	}
	for i, ch := range tx.rs.Chains {
		if tx.keep[i] {
			continue
		}
		kc := kernelChain(tx.t, ch)
		if ed := tx.edits[ch.Name]; ed != nil {
			for _, h := range ed.del {
				if err := tx.c.DelRule(&nftables.Rule{Table: tx.t, Chain: kc, Handle: h}); err != nil {
					return fmt.Errorf("delete rule %d of chain %s: %w", h, ch.Name, err)
				}
			}
			continue
		}
		if !recreate[ch.Name] {
			tx.c.AddChain(kc)
		}
		if _, ok := tx.cur.chains[ch.Name]; ok {
			tx.c.FlushChain(kc) // a new chain has nothing to flush
		}
	}
	return nil
}

// flushStaleChains flushes the chains that the ruleset does not name.
func (tx *txn) flushStaleChains() {
	if tx.delta != nil {
		for _, ch := range tx.delta.staleChains {
			if kc := tx.cur.chains[ch.Name]; kc != nil {
				tx.c.FlushChain(kc)
				tx.staleChains = append(tx.staleChains, kc)
			}
		}
		return
	}
	names := func(yield func(string) bool) {
		for _, ch := range tx.rs.Chains {
			if !yield(ch.Name) {
				return
			}
		}
	}
	for _, name := range staleKeys(tx.cur.chains, names) {
		tx.c.FlushChain(tx.cur.chains[name])
		tx.staleChains = append(tx.staleChains, tx.cur.chains[name])
	}
}

func (tx *txn) deleteAndRecreateChains() {
	for _, have := range tx.staleChains {
		tx.c.DelChain(have)
	}
	for _, ch := range tx.recreateChains {
		tx.c.DelChain(kernelChain(tx.t, ch))
		tx.c.AddChain(kernelChain(tx.t, ch))
	}
}

func (tx *txn) deleteAndRecreateSetsAndObjects() error {
	tx.staleSets = staleKeys(tx.cur.sets, func(yield func(string) bool) {
		for _, s := range tx.rs.Sets {
			if !yield(s.Name) {
				return
			}
		}
	})
	for _, name := range tx.staleSets {
		tx.c.DelSet(tx.cur.sets[name])
	}
	for _, s := range tx.recreateSets {
		tx.c.DelSet(kernelSet(tx.t, s))
		if err := tx.c.AddSet(kernelSet(tx.t, s), gateElements(s)); err != nil {
			return fmt.Errorf("re-create set %s: %w", s.Name, err)
		}
	}
	for _, s := range tx.refillSets {
		ks := kernelSet(tx.t, s)
		tx.c.FlushSet(ks)
		if el := gateElements(s); el != nil {
			if err := tx.c.SetAddElements(ks, el); err != nil {
				return fmt.Errorf("close gate %s: %w", s.Name, err)
			}
		}
	}
	for _, name := range tx.recreateObjs {
		tx.c.DeleteObject(tx.cur.objs[name])
		tx.c.AddObj(&nftables.CounterObj{Table: tx.t, Name: name})
	}
	return nil
}

// deleteStaleObjects deletes the counters the ruleset no longer has,
// after the rules and map elements that named them (the kernel refuses
// to delete an object in use, EBUSY).
func (tx *txn) deleteStaleObjects() {
	if tx.delta != nil {
		tx.staleObjs = tx.delta.staleObjs
	} else {
		tx.staleObjs = staleKeys(tx.cur.objs, slices.Values(tx.rs.Counters))
	}
	for _, name := range tx.staleObjs {
		tx.c.DeleteObject(tx.cur.objs[name])
	}
}

func (tx *txn) addRules() {
	for i, ch := range tx.rs.Chains {
		if tx.keep[i] {
			continue
		}
		kc := &nftables.Chain{Name: ch.Name, Table: tx.t}
		ed := tx.edits[ch.Name]
		for i, r := range ch.Rules {
			switch {
			case ed == nil:
				tx.c.AddRule(kernelRule(tx.t, kc, r))
			case ed.keep[i]:
			case ed.before[i] != 0:
				// Inserted before the next rule that stays: in forward
				// order, each lands after the ones inserted before it.
				kr := kernelRule(tx.t, kc, r)
				kr.Position = ed.before[i]
				tx.c.InsertRule(kr)
			default:
				tx.c.AddRule(kernelRule(tx.t, kc, r))
			}
		}
	}
}

// learn returns the rules and handles of the chains that tx did not keep,
// after its commit: those of the rules that stayed in edited chains, and
// those of the added rules from the kernel's echoes (which come in the
// order of the batch). A chain whose echoes do not match its rules is left
// out (its handles are unknown).
func (tx *txn) learn(echoes []ruleEcho) map[string]chainSync {
	got := byChain(echoes)
	out := map[string]chainSync{}
	for i, ch := range tx.rs.Chains {
		if tx.keep[i] || (got[ch.Name] == nil && len(ch.Rules) > 0 && tx.edits[ch.Name] == nil) {
			continue // kept, or no echoes: unknown
		}
		keys := tx.keys[ch.Name]
		if keys == nil {
			keys = make([]ruleKey, len(ch.Rules))
			for i, r := range ch.Rules {
				keys[i] = keyOf(r)
			}
		}
		if rules, ok := tx.learnChain(ch, keys, got[ch.Name]); ok {
			out[ch.Name] = chainSync{sum: tx.d.chains[i], rules: rules}
		}
	}
	return out
}

// synced describes the table after the commit of tx at gen: what the
// Applier knew before with the changes of tx, updated in place (both were
// the Applier's alone), so that a change costs what it changes; or, when
// it knew nothing, rs as newSynced describes it.
func (tx *txn) synced(gen uint32, echoes []ruleEcho) synced {
	learned := tx.learn(echoes)
	if tx.known == nil || !tx.cur.exists {
		return newSynced(gen, tx.rs, tx.d, learned, tx.table)
	}
	chains := tx.known
	for _, kc := range tx.staleChains {
		delete(chains, kc.Name)
	}
	for i, ch := range tx.rs.Chains {
		if tx.keep[i] {
			continue // as known
		}
		if cs, ok := learned[ch.Name]; ok {
			chains[ch.Name] = cs
			continue
		}
		chains[ch.Name] = chainSync{sum: tx.d.chains[i]}
	}
	st := tx.cur
	st.flags = 0 // the batch's NEWTABLE
	for _, kc := range tx.staleChains {
		delete(st.chains, kc.Name)
	}
	recreated := map[string]bool{}
	for _, ch := range tx.recreateChains {
		recreated[ch.Name] = true
	}
	for i, ch := range tx.rs.Chains {
		if tx.delta != nil && tx.delta.same[i] {
			continue // held before, as it is
		}
		if _, ok := st.chains[ch.Name]; !ok || recreated[ch.Name] {
			st.chains[ch.Name] = kernelChain(tx.t, ch)
		}
	}
	for _, name := range tx.staleSets {
		delete(st.sets, name)
	}
	for _, s := range tx.recreateSets {
		st.sets[s.Name] = kernelSet(tx.t, s)
	}
	st.maps = nil
	for _, s := range tx.rs.Sets {
		if _, ok := st.sets[s.Name]; !ok {
			st.sets[s.Name] = kernelSet(tx.t, s)
		}
		if s.Map != nil {
			if st.maps == nil {
				st.maps = map[string]*VMap{}
			}
			st.maps[s.Name] = s.Map
		}
	}
	for _, name := range tx.staleObjs {
		delete(st.objs, name)
	}
	counters := tx.rs.Counters
	if tx.delta != nil {
		counters = tx.delta.newCounters // the others are held as they are
	}
	for _, name := range counters {
		if o, ok := st.objs[name]; !ok || o.Type != nftables.ObjTypeCounter {
			st.objs[name] = &nftables.NamedObj{Table: tx.t, Name: name, Type: nftables.ObjTypeCounter}
		}
	}
	if len(chains) != len(tx.rs.Chains) || len(st.chains) != len(tx.rs.Chains) || len(st.sets) != len(tx.rs.Sets) ||
		len(st.objs) != len(tx.rs.Counters) {
		// Knew of something that is neither in rs nor deleted: describe
		// rs afresh, with what is known of its chains.
		known := map[string]chainSync{}
		for _, ch := range tx.rs.Chains {
			if cs, ok := chains[ch.Name]; ok && cs.rules != nil {
				known[ch.Name] = cs
			}
		}
		return newSynced(gen, tx.rs, tx.d, known, nil)
	}
	return synced{ok: true, gen: gen, rs: tx.rs, sum: tx.d.sum, chains: chains, table: st}
}

func (tx *txn) learnChain(ch *Chain, keys []ruleKey, echoes []ruleEcho) ([]kernelRuleState, bool) {
	ed := tx.edits[ch.Name]
	var kept map[ruleKey]uint64
	if ed != nil {
		kept = map[ruleKey]uint64{}
		for _, r := range tx.known[ch.Name].rules {
			kept[r.Key] = r.Handle
		}
	}
	rules := make([]kernelRuleState, len(ch.Rules))
	for i, r := range ch.Rules {
		rules[i].Key = keys[i]
		if ed != nil && ed.keep[i] {
			rules[i].Handle = kept[keys[i]]
			continue
		}
		if len(echoes) == 0 || echoes[0].comment != r.Comment {
			return nil, false
		}
		rules[i].Handle, echoes = echoes[0].handle, echoes[1:]
	}
	return rules, len(echoes) == 0
}

// staleKeys returns the keys of m that want (distinct names) lacks,
// sorted (deletions in a stable order). When m holds only wanted names,
// as after most changes, it looks each up and builds nothing.
func staleKeys[V any](m map[string]V, want iter.Seq[string]) []string {
	n := 0
	for name := range want {
		if _, ok := m[name]; ok {
			n++
		}
	}
	if n == len(m) {
		return nil
	}
	w := make(map[string]bool, n)
	for name := range want {
		w[name] = true
	}
	var out []string
	for name := range m {
		if !w[name] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// syncMaps makes the elements of each classification map those of the
// ruleset: for a map whose elements the Applier knows, it deletes and
// adds only those that differ (a change of one entry is one element
// change); a new or re-created one (plan re-creates an unknown one) is
// filled whole, one whose key changed flushed first.
func (tx *txn) syncMaps() error {
	recreated := map[string]bool{}
	for _, s := range tx.recreateSets {
		recreated[s.Name] = true
	}
	for _, s := range tx.rs.Sets {
		if s.Map == nil {
			continue
		}
		ks := kernelSet(tx.t, s)
		_, existed := tx.cur.sets[s.Name]
		have := tx.cur.maps[s.Name]
		var add, del []MapElem
		switch {
		case !existed || recreated[s.Name]:
			add = s.Map.Elems
		case have == nil || have.Fields != s.Map.Fields:
			tx.c.FlushSet(ks)
			add = s.Map.Elems
		case have == s.Map:
			continue // the very map applied before (the compile cache kept it)
		default:
			add, del = diffElems(have, s.Map)
		}
		dels := make([]nftables.SetElement, len(del))
		for i := range del {
			dels[i] = have.kernelElem(&del[i])
			dels[i].VerdictData, dels[i].Val = nil, nil // a deletion names the key only
		}
		for part := range slices.Chunk(dels, maxMapElemsPerMsg) {
			if err := tx.c.SetDeleteElements(ks, part); err != nil {
				return fmt.Errorf("delete elements of map %s: %w", s.Name, err)
			}
		}
		adds := make([]nftables.SetElement, len(add))
		for i := range add {
			adds[i] = s.Map.kernelElem(&add[i])
		}
		for part := range slices.Chunk(adds, maxMapElemsPerMsg) {
			if err := tx.c.SetAddElements(ks, part); err != nil {
				return fmt.Errorf("add elements to map %s: %w", s.Name, err)
			}
		}
	}
	return nil
}

// diffElems returns the elements of next that prev lacks and those of
// prev that next lacks (an element is its ranges and its verdict).
//
// Neither holds an element twice, so what both hold at the same place at
// their start and end is in both and is skipped by comparing in order;
// both are in seq order when the Applier compiled them, and a change of
// one entry then hashes only what lies between.
func diffElems(prev, next *VMap) (add, del []MapElem) {
	p, n := prev.Elems, next.Elems
	for len(p) > 0 && len(n) > 0 && p[0] == n[0] {
		p, n = p[1:], n[1:]
	}
	for len(p) > 0 && len(n) > 0 && p[len(p)-1] == n[len(n)-1] {
		p, n = p[:len(p)-1], n[:len(n)-1]
	}
	in := make(map[MapElem]bool, len(p))
	for _, e := range p {
		in[e] = true
	}
	want := make(map[MapElem]bool, len(n))
	for _, e := range n {
		want[e] = true
		if !in[e] {
			add = append(add, e)
		}
	}
	for _, e := range p {
		if !want[e] {
			del = append(del, e)
		}
	}
	return add, del
}

// freshLimits names the limit sets whose gate and reservation sets this
// transaction all created, re-created or emptied (the gate closed again).
func (tx *txn) freshLimits() map[string]bool {
	made := map[string]bool{}
	for _, s := range tx.rs.Sets {
		if _, ok := tx.cur.sets[s.Name]; !ok {
			made[s.Name] = true
		}
	}
	for _, s := range slices.Concat(tx.recreateSets, tx.refillSets) {
		made[s.Name] = true
	}
	out := map[string]bool{}
	for _, s := range tx.rs.Sets {
		if s.Kind == SetGate {
			out[s.Limit] = true
		}
	}
	for _, s := range tx.rs.Sets {
		if s.Limit != "" && !made[s.Name] {
			delete(out, s.Limit)
		}
	}
	for name := range out {
		if !made[name] {
			delete(out, name)
		}
	}
	return out
}
