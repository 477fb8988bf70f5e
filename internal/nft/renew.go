package nft

import (
	"crypto/sha256"
	"slices"
	"strings"

	"github.com/slxsh/slxsh/internal/acl"
)

// Renewals returns the limit sets of next that must start afresh although
// next keeps their names: those whose entry may now see sessions that its
// set did not count (or no longer see some it counted). That is when the
// interfaces bound to its chain changed, its own rules before its limit
// rule changed (its match), a rule that applies to every connection of the
// list changed (block-for lockouts), or an earlier entry changed that a
// connection could match together with it (acl.Entry.Overlaps: an earlier
// entry that no connection of this one can match decides none of them).
// prev is the ruleset the kernel holds, compiled from prevCfg; nil renews
// nothing (an adopted table keeps its counts).
func Renewals(prev, next *Ruleset, prevCfg, nextCfg *acl.Config) []string {
	if prev == nil {
		return nil
	}
	before, after := cachedViews(prev, prevCfg), cachedViews(next, nextCfg)
	changed := map[string][]int{} // chain -> seqs whose rules differ
	var out []string
	for _, s := range LimitSets(next) {
		nv, pv := after[s.Name], before[s.Name]
		lim, ok := nv.limits[s.Name]
		old, had := pv.limits[s.Name]
		if !ok || !had {
			continue // a new limit set is counted as new, not renewed
		}
		ch, done := changed[nv.chain]
		if !done {
			ch = changedSeqs(pv, nv)
			changed[nv.chain] = ch
		}
		if nv.binds != pv.binds || lim.prefix != old.prefix || renewedBy(pv, nv, ch, lim.seq) {
			out = append(out, s.Name)
		}
	}
	return out
}

// changedSeqs lists the seqs of a chain whose rules differ between two
// views (0: the list's own rules), in no order.
func changedSeqs(pv, nv chainView) []int {
	var out []int
	for seq, d := range nv.entries {
		if pv.entries[seq] != d {
			out = append(out, seq)
		}
	}
	for seq := range pv.entries {
		if _, ok := nv.entries[seq]; !ok {
			out = append(out, seq)
		}
	}
	return out
}

// chainView is what Renewals compares of one ACL chain.
type chainView struct {
	chain   string
	binds   [32]byte                // the base-chain rules that jump to it
	entries map[int][32]byte        // seq -> digest of its rules (0: the list's own rules before the entries)
	entry   map[int]*acl.Entry      // seq -> the entry (nil when the config is not known)
	limits  map[string]limitContext // limit set -> its entry and own rules before it
}

type limitContext struct {
	seq    int
	prefix [32]byte // the entry's rules before its limit rule
}

// renewedBy reports whether an entry before seq among the changed ones
// (added, removed or other rules) could decide a connection of entry seq:
// it overlaps the entry in one of its versions, or it is the list's own
// rules (seq 0), or the config is not known.
func renewedBy(pv, nv chainView, changed []int, seq int) bool {
	self := nv.entry[seq]
	for _, x := range changed {
		if x >= seq && x != 0 {
			continue // entries are in seq order: a later one decides nothing here
		}
		if x == 0 || self == nil {
			return true
		}
		for _, e := range []*acl.Entry{pv.entry[x], nv.entry[x]} {
			if e != nil && e.Overlaps(self) {
				return true
			}
		}
		if pv.entry[x] == nil && nv.entry[x] == nil {
			return true // rules without a known entry
		}
	}
	return false
}

// cachedViews is chainViews, computed once per ruleset and config.
func cachedViews(rs *Ruleset, cfg *acl.Config) map[string]chainView {
	m := rs.memo
	if m == nil {
		return chainViews(rs, cfg)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.views == nil || m.cfg != cfg {
		m.views, m.cfg = chainViews(rs, cfg), cfg
	}
	return m.views
}

// chainViews returns, keyed by each limit set's name, the view of the
// chain its limit rule is in (what Renewals compares).
func chainViews(rs *Ruleset, cfg *acl.Config) map[string]chainView {
	binds := map[string][]string{}
	for _, ch := range rs.Chains {
		if ch.Hook == nil {
			continue
		}
		for _, r := range ch.Rules {
			for _, st := range r.Stmts {
				if v, ok := st.(*Verdict); ok && v.Chain != "" {
					binds[v.Chain] = append(binds[v.Chain], ch.Hook.Hook+" "+r.String())
				}
			}
		}
	}
	limitSet := map[string]bool{}
	for _, s := range LimitSets(rs) {
		limitSet[s.Name] = true
	}
	lists := map[[2]string]map[int]*acl.Entry{} // (family, name) -> seq -> entry, built once per list
	out := map[string]chainView{}
	fl := newFlattener(rs)
	for _, ch := range rs.Chains {
		if ch.Hook != nil || ch.Mapped {
			continue // base chains, and entries' chains (in their list's view)
		}
		rules := fl.rules(ch)
		if !limitsIn(rules, limitSet) {
			continue // chains without a limit rule (reservation, block, log chains)
		}
		b := slices.Clone(binds[ch.Name])
		slices.Sort(b)
		v := chainView{chain: ch.Name, binds: sha256.Sum256([]byte(strings.Join(b, "\n"))), entries: map[int][32]byte{},
			limits: map[string]limitContext{}}
		groups, ref := chainEntries(rules)
		id := [2]string{ref.Family.String(), ref.ACL}
		if _, ok := lists[id]; !ok {
			lists[id] = map[int]*acl.Entry{}
			if cfg != nil && ref.ACL != "" {
				if l := cfg.ACL(ref.Family, ref.ACL); l != nil {
					for _, e := range l.Entries {
						lists[id][e.Seq] = e
					}
				}
			}
		}
		v.entry = lists[id]
		for _, g := range groups {
			// A seq's rules may stand in more than one group (the list's
			// own rules at the top): fold them.
			had := v.entries[g.seq]
			v.entries[g.seq] = sha256.Sum256(append(had[:], g.digest[:]...))
			for j, r := range g.rules {
				for _, st := range r.Stmts {
					if c, ok := st.(*ConnlimitAdd); ok && g.seq != 0 && limitSet[c.Set] {
						h := sha256.New()
						for _, pr := range g.rules[:j] {
							h.Write([]byte(pr.String() + "\n"))
						}
						var sum [32]byte
						copy(sum[:], h.Sum(nil))
						v.limits[c.Set] = limitContext{seq: g.seq, prefix: sum}
					}
				}
			}
		}
		for name := range v.limits {
			out[name] = v
		}
	}
	return out
}

// limitsIn reports whether a chain holds the limit rule of a limit set.
func limitsIn(rules []*Rule, limitSet map[string]bool) bool {
	for _, r := range rules {
		for _, st := range r.Stmts {
			if c, ok := st.(*ConnlimitAdd); ok && limitSet[c.Set] {
				return true
			}
		}
	}
	return false
}

// chainEntry is a run of one entry's rules in an ACL chain, in order, and
// a digest of their text.
type chainEntry struct {
	seq    int
	rules  []*Rule
	digest [32]byte
}

// chainEntries groups a chain's rules by entry, in order (seq 0: rules
// that apply to every connection of the list: block-for lockouts and the
// implicit rules), with each group's digest; ref names the list.
func chainEntries(rules []*Rule) ([]chainEntry, EntryRef) {
	var entries []chainEntry
	var ref EntryRef
	for _, r := range rules {
		seq := 0
		if er, role, ok := ParseComment(r.Comment); ok {
			ref = er
			if role != RoleBlocked && role != RoleBlockedFull {
				seq = er.Seq
			}
		}
		if n := len(entries); n == 0 || entries[n-1].seq != seq {
			entries = append(entries, chainEntry{seq: seq})
		}
		entries[len(entries)-1].rules = append(entries[len(entries)-1].rules, r)
	}
	for i := range entries {
		h := sha256.New()
		for _, r := range entries[i].rules {
			h.Write([]byte(r.String() + "\n"))
		}
		copy(entries[i].digest[:], h.Sum(nil))
	}
	return entries, ref
}
