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
// chains). Each Compile keeps only the entries it used.
type Cache struct {
	mu    sync.Mutex
	opts  string
	prev  map[cacheKey]*entryOut
	next  map[cacheKey]*entryOut
	spare map[cacheKey]*entryOut // an empty map, for the next Compile's next
}

// cacheKey is where an entry was compiled: its chain, its form and its
// seq (one entry at most each).
type cacheKey struct {
	chain  chainKey
	mapped bool
	seq    int
}

// entryOut is what compiling one entry added to the ruleset: its rules
// in its list's chain, or, in a map, its elements (and its chain first).
type entryOut struct {
	entry    acl.Key // what was compiled
	rules    []*Rule
	chains   []*Chain
	elems    []MapElem
	sets     []*Set
	counters []string
}

// begin starts a Compile with options o.
func (c *Cache) begin(o Options) {
	c.mu.Lock()
	fp := fmt.Sprint(o.SetSize, o.LogGroup)
	if fp != c.opts {
		c.opts, c.prev = fp, nil
	}
	c.next, c.spare = c.spare, nil
	if c.next == nil {
		c.next = make(map[cacheKey]*entryOut, len(c.prev))
	}
}

// end keeps what this Compile used (on success) for the next one.
func (c *Cache) end(ok bool) {
	if ok {
		c.prev, c.next = c.next, c.prev
	}
	clear(c.next) // the map's room serves the next Compile
	c.spare, c.next = c.next, nil
	c.mu.Unlock()
}

// cacheable reports whether an entry's rules depend only on what the
// cache key holds.
func cacheable(e *acl.Entry) bool {
	return e.TimeRange == "" && e.Owner == nil && e.Quota == nil && !e.Log && e.Refuse.Kind != acl.RefuseMessage &&
		len(e.Connlimits) <= acl.MaxConnlimits
}

// cachedEntry returns what entry e compiles to (compute, on a miss),
// adding its sets and counters to the ruleset either way.
func (b *builder) cachedEntry(k chainKey, e *acl.Entry, mapped bool, compute func() entryOut) entryOut {
	c := b.opt.Cache
	if c == nil || !cacheable(e) {
		return compute()
	}
	key, content := cacheKey{chain: k, mapped: mapped, seq: e.Seq}, e.Key()
	if out := c.prev[key]; out != nil && out.entry == content {
		b.rs.Sets = append(b.rs.Sets, out.sets...)
		b.rs.Counters = append(b.rs.Counters, out.counters...)
		c.next[key] = out
		return *out
	}
	nErrs, nSets, nCounters := len(b.errs), len(b.rs.Sets), len(b.rs.Counters)
	out := compute()
	if len(b.errs) == nErrs {
		kept := out
		kept.entry = content
		kept.sets, kept.counters = slices.Clone(b.rs.Sets[nSets:]), slices.Clone(b.rs.Counters[nCounters:])
		c.next[key] = &kept
	}
	return out
}
