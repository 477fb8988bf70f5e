package nft

import (
	"fmt"
	"slices"
	"sync"

	"github.com/slxsh/slxsh/internal/acl"
)

// Cache keeps what Compile made of each entry, for the next Compile
// (Options.Cache): an entry that did not change gets the same rules,
// chains, sets and counters without being compiled again, and its rules
// keep their rendered text (Rule.String), which Renewals, the digest and
// the rule diff of a change all read. A one-entry change of a 50k-entry
// list then costs what that entry costs, not what 50k do. Safe for use by
// one Compile at a time (the agent compiles under its lock).
//
// Only entries whose rules depend on nothing but the entry, its list and
// direction, its form (rules or an entry of a map) and Options.SetSize
// and LogGroup are kept: not those with a time range (the clock's
// offset), a socket owner (the user database), a quota (numbered in
// config order), a refuse message (numbered by text) or log (shared log
// chains). Each Compile keeps only the entries it used. A map of such
// entries is kept whole, with the entries and the cause that ended it
// (entries, cachedRun); a change of Options.MapRun forgets everything.
//
// An entry is told unchanged by its pointer, as acl keeps entries
// immutable once they are in a config, or else by its content (acl.Key).
//
// Why lists and not a map: entries come in seq order in each chain, so
// the entry compiled before at the same place is found by walking the
// previous list beside the new one; at 50k entries two maps of them cost
// more than all the rest of a change's compile.
type Cache struct {
	mu   sync.Mutex
	opts string
	prev map[chainKey][]*entryOut // per chain, in seq order
	next map[chainKey][]*entryOut
	// The mapped runs, per chain, in seq order.
	prevRuns map[chainKey][]*runOut
	nextRuns map[chainKey][]*runOut
	// The ruleset's counters as the builder added them, and sorted
	// (sortCounters).
	prevCounters, prevSorted []string
	nextCounters, nextSorted []string
}

// runOut is what compiling a mapped run added to the ruleset, and what
// decided its extent.
type runOut struct {
	entries  []*acl.Entry // the run
	end      runEnd
	rules    []*Rule
	chains   []*Chain
	sets     []*Set
	counters []string
	outs     []*entryOut // its entries' (for the entry cache)
}

// entryOut is what compiling one entry added to the ruleset: its rules
// in its list's chain, or, in a map, its elements (and its chain first).
type entryOut struct {
	src      *acl.Entry // what was compiled (immutable once in a config)
	entry    acl.Key    // and its content
	mapped   bool       // as an entry of a map
	rules    []*Rule
	chains   []*Chain
	elems    []MapElem
	view     *Chain // a counter map's element: the chain it stands for (not in the ruleset)
	sets     []*Set
	counters []string
}

// begin starts a Compile with options o.
func (c *Cache) begin(o Options) {
	c.mu.Lock()
	fp := fmt.Sprint(o.SetSize, o.LogGroup, o.MapRun)
	if fp != c.opts {
		c.opts, c.prev, c.prevRuns = fp, nil, nil
	}
	c.next = make(map[chainKey][]*entryOut, len(c.prev))
	c.nextRuns = make(map[chainKey][]*runOut, len(c.prevRuns))
}

// end keeps what this Compile used (on success) for the next one.
func (c *Cache) end(ok bool) {
	if ok {
		c.prev, c.prevRuns = c.next, c.nextRuns
		c.prevCounters, c.prevSorted = c.nextCounters, c.nextSorted
	}
	c.next, c.nextRuns, c.nextCounters, c.nextSorted = nil, nil, nil, nil
	c.mu.Unlock()
}

// cacheCursor walks the previous Compile's entries of one chain while the
// builder compiles its entries in seq order, and collects the new ones.
type cacheCursor struct {
	c    *Cache
	k    chainKey
	prev []*entryOut
	runs []*runOut
}

// cursor starts the walk of chain k's entries (nil without a cache).
func (b *builder) cursor(k chainKey) *cacheCursor {
	if b.opt.Cache == nil {
		return nil
	}
	return &cacheCursor{c: b.opt.Cache, k: k, prev: b.opt.Cache.prev[k], runs: b.opt.Cache.prevRuns[k]}
}

// cachedRun returns the mapped run the cache kept that starts at list[0]
// and would be formed again: the same entries (by pointer: immutable),
// ended by the same cause (a chunk boundary, the same next entry, or the
// end of the list). n is how many entries of list it covers (remarks
// included). It adds the run's sets and counters to the ruleset.
func (b *builder) cachedRun(cc *cacheCursor, list []*acl.Entry) (r *runOut, n int) {
	if cc == nil {
		return nil, 0
	}
	for len(cc.runs) > 0 && cc.runs[0].entries[0].Seq < list[0].Seq {
		cc.runs = cc.runs[1:] // a few dozen runs
	}
	if len(cc.runs) == 0 || cc.runs[0].entries[0] != list[0] {
		return nil, 0
	}
	r = cc.runs[0]
	j := 0 // in r.entries
	for n < len(list) && j < len(r.entries) {
		switch e := list[n]; {
		case e.Action == acl.Remark:
		case e != r.entries[j]:
			return nil, 0
		default:
			j++
		}
		n++
	}
	if j < len(r.entries) {
		return nil, 0
	}
	if !r.end.boundary {
		next := n
		for next < len(list) && list[next].Action == acl.Remark {
			next++
		}
		if (next < len(list)) != (r.end.after != nil) || (r.end.after != nil && list[next] != r.end.after) {
			return nil, 0 // the entry after it, which ended it, changed
		}
	}
	b.rs.Sets = append(b.rs.Sets, r.sets...)
	b.rs.Counters = append(b.rs.Counters, r.counters...)
	cc.c.next[cc.k] = append(cc.c.next[cc.k], r.outs...)
	cc.c.nextRuns[cc.k] = append(cc.c.nextRuns[cc.k], r)
	return r, n
}

// skipTo drops the entries before seq from outs (in seq order): by
// doubling steps, then halving them, as the walk skips whole runs that
// cachedRun took (reading each of 50k entries on the way cost more than
// the rest of a change's compile).
func skipTo(outs []*entryOut, seq int) []*entryOut {
	if len(outs) == 0 || outs[0].entry.Seq() >= seq {
		return outs
	}
	// outs[lo] is before seq; find the first at or after it.
	lo, step := 0, 1
	for lo+step < len(outs) && outs[lo+step].entry.Seq() < seq {
		lo += step
		step *= 2
	}
	hi := min(lo+step, len(outs)) // outs[hi] (if any) is at or after seq
	i, _ := slices.BinarySearchFunc(outs[lo+1:hi], seq, func(o *entryOut, s int) int { return o.entry.Seq() - s })
	return outs[lo+1+i:]
}

// mappedRun compiles a run as a map (mapRules), keeping it for the next
// Compile.
func (b *builder) mappedRun(k chainKey, cc *cacheCursor, run []*acl.Entry, end runEnd) ([]*Rule, []*Chain) {
	if cc == nil {
		return b.mapRules(k, cc, run)
	}
	nErrs, nSets, nCounters, nOuts := len(b.errs), len(b.rs.Sets), len(b.rs.Counters), len(cc.c.next[k])
	rules, chains := b.mapRules(k, cc, run)
	if len(b.errs) == nErrs && !slices.ContainsFunc(run, func(e *acl.Entry) bool { return !cacheable(e) }) {
		cc.c.nextRuns[k] = append(cc.c.nextRuns[k], &runOut{entries: slices.Clone(run), end: end, rules: rules, chains: chains,
			sets: slices.Clone(b.rs.Sets[nSets:]), counters: slices.Clone(b.rs.Counters[nCounters:]),
			outs: slices.Clone(cc.c.next[k][nOuts:])})
	}
	return rules, chains
}

// cacheable reports whether an entry's rules depend only on what the
// cache key holds.
func cacheable(e *acl.Entry) bool {
	return e.TimeRange == "" && e.Owner == nil && e.Quota == nil && !e.Log && e.Refuse.Kind != acl.RefuseMessage &&
		len(e.Connlimits) <= acl.MaxConnlimits
}

// cachedEntry returns what entry e compiles to (compute, on a miss),
// adding its sets and counters to the ruleset either way. Entries come
// in seq order.
func (b *builder) cachedEntry(cc *cacheCursor, e *acl.Entry, mapped bool, compute func() *entryOut) *entryOut {
	if cc == nil || !cacheable(e) {
		return compute()
	}
	cc.prev = skipTo(cc.prev, e.Seq)
	// The same entry (entries do not change once in a config: a change
	// of the config replaces them), or one equal to it.
	if len(cc.prev) > 0 && cc.prev[0].mapped == mapped && (cc.prev[0].src == e || cc.prev[0].entry == e.Key()) {
		out := cc.prev[0]
		out.src = e // the next compile finds it by pointer
		b.rs.Sets = append(b.rs.Sets, out.sets...)
		b.rs.Counters = append(b.rs.Counters, out.counters...)
		cc.c.next[cc.k] = append(cc.c.next[cc.k], out)
		return out
	}
	nErrs, nSets, nCounters := len(b.errs), len(b.rs.Sets), len(b.rs.Counters)
	out := compute()
	if len(b.errs) == nErrs {
		// compute made out for this entry alone: kept as it is (callers
		// only read it, as they read a hit).
		out.src, out.entry, out.mapped = e, e.Key(), mapped
		out.sets, out.counters = slices.Clone(b.rs.Sets[nSets:]), slices.Clone(b.rs.Counters[nCounters:])
		cc.c.next[cc.k] = append(cc.c.next[cc.k], out)
	}
	return out
}
