package nft

import (
	"fmt"
	"maps"
	"slices"

	"github.com/google/nftables"
)

// queue adds the whole transaction to c, in an order the kernel accepts:
// creations, then flushes (after which no rule references anything), then
// deletions and re-creations, then the rules. known holds the text of the
// chains the kernel is known to hold (nil when unknown); renew names limit
// sets to start afresh (see Applier.Apply).
func queue(c *nftables.Conn, table string, cur *tableState, rs *Ruleset, known map[string]string, renew []string) error {
	tx := &txn{c: c, t: &nftables.Table{Name: table, Family: nftables.TableFamilyINet}, cur: cur, rs: rs}
	tx.plan(known, renew)
	c.AddTable(tx.t)
	if err := tx.addSetsAndCounters(); err != nil {
		return err
	}
	tx.addAndFlushChains()
	tx.flushStaleChains()
	// No rule references anything from here on, except those of kept chains,
	// which reference nothing that is deleted or re-created. Sets go before
	// chains: a depth map's elements reference its depth chains, and a
	// chain that an element jumps to cannot be deleted (EBUSY).
	if err := tx.deleteAndRecreateSetsAndObjects(); err != nil {
		return err
	}
	tx.deleteAndRecreateChains()
	tx.addRules()
	return nil
}

// txn builds one Apply transaction.
type txn struct {
	c   *nftables.Conn
	t   *nftables.Table
	cur *tableState
	rs  *Ruleset

	recreateSets   []*Set
	recreateObjs   []string
	recreateChains []*Chain
	staleChains    []*nftables.Chain
	keep           map[string]bool // chains left as they are
}

// plan finds what exists with other properties and must be re-created,
// and which chains can be kept.
func (tx *txn) plan(known map[string]string, renew []string) {
	again := tx.renewals(renew)
	for _, s := range tx.rs.Sets {
		have, ok := tx.cur.sets[s.Name]
		if ok && (again[s.Name] || again[s.Limit] || !sameSet(have, kernelSet(tx.t, s))) {
			// Why: AddSet of an existing set with other properties fails
			// the whole batch; such a set must be deleted and re-created
			// (its counts are lost, as with a new set name).
			tx.recreateSets = append(tx.recreateSets, s)
		}
	}
	for _, name := range tx.rs.Counters {
		if o, ok := tx.cur.objs[name]; ok && o.Type != nftables.ObjTypeCounter {
			tx.recreateObjs = append(tx.recreateObjs, name)
		}
	}
	for _, ch := range tx.rs.Chains {
		if have, ok := tx.cur.chains[ch.Name]; ok && !sameChain(have, kernelChain(tx.t, ch)) {
			// Why: the kernel cannot change a chain's hook or type in place.
			tx.recreateChains = append(tx.recreateChains, ch)
		}
	}
	tx.keep = map[string]bool{}
	if known == nil || len(tx.recreateSets)+len(tx.recreateObjs)+len(tx.recreateChains) > 0 {
		// A kept chain's rules could reference what is re-created.
		return
	}
	for _, ch := range tx.rs.Chains {
		if text, ok := known[ch.Name]; ok && tx.cur.chains[ch.Name] != nil && text == ch.String() {
			tx.keep[ch.Name] = true
		}
	}
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
	for _, name := range tx.rs.Counters {
		if _, ok := tx.cur.objs[name]; !ok {
			tx.c.AddObj(&nftables.CounterObj{Table: tx.t, Name: name})
		}
	}
	return nil
}

// addAndFlushChains adds every desired chain that is not kept (a no-op when
// it exists) and flushes it. A chain to be re-created is only flushed here.
func (tx *txn) addAndFlushChains() {
	recreate := map[string]bool{}
	for _, ch := range tx.recreateChains {
		recreate[ch.Name] = true
	}
	for _, ch := range tx.rs.Chains {
		if tx.keep[ch.Name] {
			continue
		}
		kc := kernelChain(tx.t, ch)
		if !recreate[ch.Name] {
			tx.c.AddChain(kc)
		}
		tx.c.FlushChain(kc)
	}
}

// flushStaleChains flushes the chains that the ruleset does not name.
func (tx *txn) flushStaleChains() {
	want := map[string]bool{}
	for _, ch := range tx.rs.Chains {
		want[ch.Name] = true
	}
	for _, name := range sortedKeys(tx.cur.chains) {
		if !want[name] {
			tx.c.FlushChain(tx.cur.chains[name])
			tx.staleChains = append(tx.staleChains, tx.cur.chains[name])
		}
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
	wantSets := map[string]bool{}
	for _, s := range tx.rs.Sets {
		wantSets[s.Name] = true
	}
	for _, name := range sortedKeys(tx.cur.sets) {
		if !wantSets[name] {
			tx.c.DelSet(tx.cur.sets[name])
		}
	}
	for _, s := range tx.recreateSets {
		tx.c.DelSet(kernelSet(tx.t, s))
		if err := tx.c.AddSet(kernelSet(tx.t, s), gateElements(s)); err != nil {
			return fmt.Errorf("re-create set %s: %w", s.Name, err)
		}
	}
	wantObjs := map[string]bool{}
	for _, name := range tx.rs.Counters {
		wantObjs[name] = true
	}
	for _, name := range sortedKeys(tx.cur.objs) {
		if !wantObjs[name] {
			tx.c.DeleteObject(tx.cur.objs[name])
		}
	}
	for _, name := range tx.recreateObjs {
		tx.c.DeleteObject(tx.cur.objs[name])
		tx.c.AddObj(&nftables.CounterObj{Table: tx.t, Name: name})
	}
	return nil
}

func (tx *txn) addRules() {
	for _, ch := range tx.rs.Chains {
		if tx.keep[ch.Name] {
			continue
		}
		kc := &nftables.Chain{Name: ch.Name, Table: tx.t}
		for _, r := range ch.Rules {
			tx.c.AddRule(kernelRule(tx.t, kc, r))
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
