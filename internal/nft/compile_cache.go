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
	c.next = make(map[chainKey][]*entryOut, len(c.prev))
}

// end keeps what this Compile used (on success) for the next one.
func (c *Cache) end(ok bool) {
	if ok {
		c.prev = c.next
	}
	c.next = nil
	c.mu.Unlock()
}

// cacheCursor walks the previous Compile's entries of one chain while the
// builder compiles its entries in seq order, and collects the new ones.
type cacheCursor struct {
	c    *Cache
	k    chainKey
	prev []*entryOut
}

// cursor starts the walk of chain k's entries (nil without a cache).
func (b *builder) cursor(k chainKey) *cacheCursor {
	if b.opt.Cache == nil {
		return nil
	}
	return &cacheCursor{c: b.opt.Cache, k: k, prev: b.opt.Cache.prev[k]}
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
	for len(cc.prev) > 0 && cc.prev[0].entry.Seq() < e.Seq {
		cc.prev = cc.prev[1:]
	}
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
		kept := *out
		kept.src, kept.entry, kept.mapped = e, e.Key(), mapped
		kept.sets, kept.counters = slices.Clone(b.rs.Sets[nSets:]), slices.Clone(b.rs.Counters[nCounters:])
		cc.c.next[cc.k] = append(cc.c.next[cc.k], &kept)
	}
	return out
}
