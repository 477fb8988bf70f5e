package nft

import (
	"fmt"
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
	mu   sync.Mutex
	opts string
	prev map[cacheKey]*entryOut
	next map[cacheKey]*entryOut
}

type cacheKey struct {
	chain  chainKey
	mapped bool
	entry  string // acl.FormatEntry
}

// entryOut is what compiling one entry added to the ruleset.
type entryOut struct {
	rules    []*Rule
	chains   []*Chain
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
	c.next = make(map[cacheKey]*entryOut, len(c.prev))
}

// end keeps what this Compile used (on success) for the next one.
func (c *Cache) end(ok bool) {
	if ok {
		c.prev = c.next
	}
	c.next = nil
	c.mu.Unlock()
}

// cacheable reports whether an entry's rules depend only on what the
// cache key holds.
func cacheable(e *acl.Entry) bool {
	return e.TimeRange == "" && e.Owner == nil && e.Quota == nil && !e.Log && e.Refuse.Kind != acl.RefuseMessage
}

// cachedEntry returns the rules and chains of entry e (compiled by compute
// on a miss), adding its sets and counters to the ruleset either way.
func (b *builder) cachedEntry(k chainKey, e *acl.Entry, mapped bool, compute func() ([]*Rule, []*Chain)) ([]*Rule, []*Chain) {
	c := b.opt.Cache
	if c == nil || !cacheable(e) {
		return compute()
	}
	key := cacheKey{chain: k, mapped: mapped, entry: acl.FormatEntry(k.fam, e)}
	if out := c.prev[key]; out != nil {
		b.rs.Sets = append(b.rs.Sets, out.sets...)
		b.rs.Counters = append(b.rs.Counters, out.counters...)
		c.next[key] = out
		return out.rules, out.chains
	}
	nErrs, nSets, nCounters := len(b.errs), len(b.rs.Sets), len(b.rs.Counters)
	rules, chains := compute()
	if len(b.errs) == nErrs {
		c.next[key] = &entryOut{rules: rules, chains: chains,
			sets: append([]*Set(nil), b.rs.Sets[nSets:]...), counters: append([]string(nil), b.rs.Counters[nCounters:]...)}
	}
	return rules, chains
}
