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
	changed := map[string][]int{} // chain -> seqs whose parts differ
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

// PrepareRenewals computes what Renewals reads of rs (compiled from cfg)
// when rs is the previous ruleset of the next change, so that the next
// change does not (an agent calls it in the background after an apply
// that Renewals did not read: the first, or an adopted table's).
func PrepareRenewals(rs *Ruleset, cfg *acl.Config) {
	if rs != nil {
		cachedViews(rs, cfg)
	}
}

// changedSeqs lists the seqs of a chain whose parts differ between two
// views (0: the list's own rules), in increasing order.
func changedSeqs(pv, nv chainView) []int {
	var out []int
	a, b := pv.groups, nv.groups
	for len(a) > 0 || len(b) > 0 {
		seq := 0
		switch {
		case len(a) == 0:
			seq = b[0].seq
		case len(b) == 0:
			seq = a[0].seq
		default:
			seq = min(a[0].seq, b[0].seq)
		}
		i, j := seqRun(a, seq), seqRun(b, seq)
		if !slices.EqualFunc(a[:i], b[:j], viewGroup.equal) {
			out = append(out, seq)
		}
		a, b = a[i:], b[j:]
	}
	return out
}

// seqRun is how many groups at the start of gs are of seq.
func seqRun(gs []viewGroup, seq int) int {
	n := 0
	for n < len(gs) && gs[n].seq == seq {
		n++
	}
	return n
}

// chainView is what Renewals compares of one ACL chain.
type chainView struct {
	chain  string
	binds  [32]byte                // the base-chain rules that jump to it
	groups []viewGroup             // its entries' parts, by seq (stable: in chain order within a seq)
	list   *acl.ACL                // the list in the config (nil when not known)
	limits map[string]limitContext // limit set -> its entry and own rules before it
}

// entry is the list's entry seq, nil when not known.
func (v chainView) entry(seq int) *acl.Entry {
	if v.list == nil {
		return nil
	}
	return v.list.Entry(seq)
}

// viewGroup is a run of one entry's part of a list read as one chain
// (seq 0: rules that apply to every connection of the list: block-for
// lockouts and the implicit rules): the elements of a map that send its
// connections to its chain, when in a map, then rules, in order. It holds
// parts of the ruleset, not copies: comparing an unchanged entry is
// comparing pointers (Options.Cache keeps an unchanged entry's rules).
type viewGroup struct {
	seq    int
	lookup *MapLookup // the lookup that elems are of (nil: rules only)
	elems  []MapElem
	rules  []*Rule
}

func (g viewGroup) equal(o viewGroup) bool {
	if g.seq != o.seq || (g.lookup == nil) != (o.lookup == nil) || (g.lookup != nil && *g.lookup != *o.lookup) ||
		!slices.Equal(g.elems, o.elems) {
		return false
	}
	return slices.EqualFunc(g.rules, o.rules, func(a, b *Rule) bool { return a == b || a.String() == b.String() })
}

// texts are the group's parts as the flattened list renders them
// (flattener): the elements as one rule, then the rules.
func (g viewGroup) texts() []string {
	var out []string
	if g.lookup != nil {
		out = append(out, (&mapHit{head: g.lookup.String() + " element { ", fields: g.lookup.Fields, elems: g.elems}).String())
	}
	for _, r := range g.rules {
		out = append(out, r.String())
	}
	return out
}

type limitContext struct {
	seq    int
	prefix [32]byte // the entry's parts before its limit rule
}

// renewedBy reports whether an entry before seq among the changed ones
// (added, removed or other rules) could decide a connection of entry seq:
// it overlaps the entry in one of its versions, or it is the list's own
// rules (seq 0), or the config is not known.
func renewedBy(pv, nv chainView, changed []int, seq int) bool {
	self := nv.entry(seq)
	for _, x := range changed {
		if x >= seq {
			break // in seq order: a later one decides nothing here
		}
		if x == 0 || self == nil {
			return true
		}
		was, is := pv.entry(x), nv.entry(x)
		if was == nil && is == nil {
			return true // rules without a known entry
		}
		if (was != nil && was.Overlaps(self)) || (is != nil && is.Overlaps(self)) {
			return true
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
	out := map[string]chainView{}
	fl := newFlattener(rs)
	for _, ch := range rs.Chains {
		if ch.Hook != nil || ch.Mapped {
			continue // base chains, and entries' chains (in their list's view)
		}
		groups, ref := fl.groups(ch)
		if !limitsIn(groups, limitSet) {
			continue // chains without a limit rule (reservation, block, log chains)
		}
		b := slices.Clone(binds[ch.Name])
		slices.Sort(b)
		v := chainView{chain: ch.Name, binds: sha256.Sum256([]byte(strings.Join(b, "\n"))), groups: groups,
			limits: map[string]limitContext{}}
		if cfg != nil && ref.ACL != "" {
			v.list = cfg.ACL(ref.Family, ref.ACL)
		}
		for _, g := range groups {
			if g.seq == 0 {
				continue
			}
			for j, r := range g.rules {
				for _, st := range r.Stmts {
					if c, ok := st.(*ConnlimitAdd); ok && limitSet[c.Set] {
						// The entry's parts before its limit rule: its match.
						before := g.texts()
						before = before[:len(before)-len(g.rules)+j]
						v.limits[c.Set] = limitContext{seq: g.seq, prefix: sha256.Sum256([]byte(strings.Join(before, "\n")))}
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
func limitsIn(groups []viewGroup, limitSet map[string]bool) bool {
	for _, g := range groups {
		for _, r := range g.rules {
			for _, st := range r.Stmts {
				if c, ok := st.(*ConnlimitAdd); ok && limitSet[c.Set] {
					return true
				}
			}
		}
	}
	return false
}

// RangeConcerns reports whether the switch of x's time range concerns the
// limit of e, x at or before e in their list: x is e, or a connection
// could match both and x does not pass it on (a limited deny counts a
// connection and passes it on: its switching changes what later entries
// see only by connections it refuses, which never open).
func RangeConcerns(x, e *acl.Entry) bool {
	return x == e || (x.Seq < e.Seq && !(x.Action == acl.Deny && len(x.Connlimits) > 0) && x.Overlaps(e))
}

// RangeRenewals returns the limit sets of rs (compiled from cfg) that a
// switch of the time ranges named by switched concerns: the limit of an
// entry with such a range (it starts or stops deciding connections) and
// that of every later entry a connection could match together with one
// (it stops or starts seeing that entry's connections; not behind a
// limited deny: RangeConcerns). Nothing in the
// ruleset changes at such a switch, the kernel's clock does it, so an
// agent renews them across the instant (agent.CrossBoundary) and after a
// restart (it may have slept through one).
func RangeRenewals(rs *Ruleset, cfg *acl.Config, switched func(name string) bool) []string {
	type list struct {
		f    acl.Family
		name string
	}
	ranged := map[list][]*acl.Entry{}
	for _, l := range cfg.ACLs {
		for _, e := range l.Entries {
			if e.TimeRange != "" && switched(e.TimeRange) {
				k := list{l.Family, l.Name}
				ranged[k] = append(ranged[k], e)
			}
		}
	}
	if len(ranged) == 0 {
		return nil
	}
	var out []string
	for _, s := range LimitSets(rs) {
		xs := ranged[list{s.Entry.Family, s.Entry.ACL}]
		l := cfg.ACL(s.Entry.Family, s.Entry.ACL)
		if len(xs) == 0 || l == nil {
			continue
		}
		e := l.Entry(s.Entry.Seq)
		for _, x := range xs {
			if e == nil || RangeConcerns(x, e) {
				out = append(out, s.Name)
				break
			}
		}
	}
	return out
}
