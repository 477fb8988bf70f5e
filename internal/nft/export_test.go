package nft

import (
	"fmt"

	"github.com/google/nftables"
)

// Generation returns the ruleset generation of the namespace a works in
// (for tests that check that nothing was committed).
func Generation(a *Applier) (uint32, error) {
	c, err := nftables.New(a.opts...)
	if err != nil {
		return 0, err
	}
	return generation(c)
}

// CheckKnowledge compares what a knows of its table (kept up to date
// change by change) with the table the kernel holds: its chains, sets,
// objects, the elements of its maps, the handles of the rules it knows
// and the sums of its chains. "" when they agree.
func (a *Applier) CheckKnowledge() (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.sync.ok || a.sync.rs == nil {
		return "", nil // knows nothing: nothing to be wrong about
	}
	c, err := a.readConn()
	if err != nil {
		return "", err
	}
	if gen, err := generation(c); err != nil || gen != a.sync.gen {
		return "", err // someone committed since (the test's own gates, say)
	}
	cur, err := readTable(c, a.table)
	if err != nil {
		return "", err
	}
	k, rs := a.sync.table, a.sync.rs
	switch {
	case len(k.chains) != len(cur.chains) || len(k.sets) != len(cur.sets) || len(k.objs) != len(cur.objs):
		return fmt.Sprintf("knows %d chains, %d sets, %d objects; the kernel has %d, %d, %d",
			len(k.chains), len(k.sets), len(k.objs), len(cur.chains), len(cur.sets), len(cur.objs)), nil
	case k.flags != cur.flags:
		return "table flags", nil
	}
	for name, ch := range k.chains {
		if have, ok := cur.chains[name]; !ok || !sameChain(have, ch) {
			return "chain " + name, nil
		}
	}
	for name, s := range k.sets {
		if have, ok := cur.sets[name]; !ok || !sameSet(have, s) {
			return "set " + name, nil
		}
	}
	for name, o := range k.objs {
		if have, ok := cur.objs[name]; !ok || have.Type != o.Type {
			return "object " + name, nil
		}
	}
	t := &nftables.Table{Name: a.table, Family: nftables.TableFamilyINet}
	for _, s := range rs.Sets {
		if s.Map == nil {
			continue
		}
		if k.maps[s.Name] != s.Map {
			return "map " + s.Name + " elements not known as applied", nil
		}
		if d, err := diffMap(c, t, s); d != "" || err != nil {
			return d, err
		}
	}
	d := digestOf(rs, nil)
	if len(a.sync.chains) != len(rs.Chains) {
		return fmt.Sprintf("knows %d chain states, want %d", len(a.sync.chains), len(rs.Chains)), nil
	}
	for i, ch := range rs.Chains {
		cs, ok := a.sync.chains[ch.Name]
		if !ok || cs.sum != d.chains[i] {
			return "sum of chain " + ch.Name, nil
		}
		if cs.rules == nil {
			continue
		}
		rules, err := c.GetRules(t, cur.chains[ch.Name])
		if err != nil {
			return "", err
		}
		if len(rules) != len(cs.rules) {
			return fmt.Sprintf("chain %s: knows %d rules, the kernel has %d", ch.Name, len(cs.rules), len(rules)), nil
		}
		for j, r := range rules {
			if r.Handle != cs.rules[j].Handle || cs.rules[j].Key != keyOf(ch.Rules[j]) {
				return fmt.Sprintf("chain %s: rule %d handle %d, the kernel's %d", ch.Name, j, cs.rules[j].Handle, r.Handle), nil
			}
		}
	}
	if d.sum != a.sync.sum {
		return "sum of the ruleset", nil
	}
	return "", nil
}

// SaveStateOf makes a know that the kernel holds rs (as after an Apply
// that learned no handles) and saves it, as an Apply's commit does: for
// benchmarks of the save without a kernel.
func SaveStateOf(a *Applier, rs *Ruleset) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sync.rs != rs {
		a.sync = newSynced(1, rs, a.digestOf(rs), nil, nil)
	}
	a.saveState(&nftables.Conn{}, true)
}
