package conntrack

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/nft"
)

// Binding is one ACL applied in one direction, with the Linux names of the
// interfaces it is applied to.
type Binding struct {
	ACL    *acl.ACL
	Dir    acl.Direction
	Ifaces []string
	// AtNow says that ACL is the list as the kernel applies it at this
	// moment (Tracker.bindings: entries whose time range is inactive left
	// out, active.go), so that a time range is no condition conntrack
	// cannot show. Without it (Bindings) a ranged entry's range is unseen:
	// a ranged permit matches, a ranged deny never refuses.
	AtNow bool
}

// Bindings lists the access-groups of c, one Binding per applied ACL and
// direction, sorted by family, name and direction. ifname maps an interface
// block to its Linux name (management 0 and ethernet S/P go through the
// agent's mapping); ACLs that do not exist are skipped.
func Bindings(c *acl.Config, ifname func(*acl.Interface) string) []Binding {
	type id struct {
		f    acl.Family
		name string
		d    acl.Direction
	}
	byID := map[id]*Binding{}
	for _, itf := range c.Interfaces {
		for f := range 2 {
			for d := range 2 {
				name := itf.Groups[f][d]
				if name == "" {
					continue
				}
				k := id{acl.Family(f), name, acl.Direction(d)}
				b := byID[k]
				if b == nil {
					a := findACL(c, acl.Family(f), name)
					if a == nil {
						continue
					}
					b = &Binding{ACL: a, Dir: acl.Direction(d)}
					byID[k] = b
				}
				b.Ifaces = append(b.Ifaces, ifname(itf))
			}
		}
	}
	out := make([]Binding, 0, len(byID))
	for _, b := range byID {
		slices.Sort(b.Ifaces)
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b Binding) int {
		return cmp.Or(cmp.Compare(a.ACL.Family, b.ACL.Family),
			cmp.Compare(a.ACL.Name, b.ACL.Name), cmp.Compare(a.Dir, b.Dir))
	})
	return out
}

func findACL(c *acl.Config, f acl.Family, name string) *acl.ACL {
	for _, a := range c.ACLs {
		if a.Family == f && a.Name == name {
			return a
		}
	}
	return nil
}

// Locator tells through which interface a flow entered or leaves the host;
// conntrack does not record it. An empty name means unknown, and an unknown
// interface makes the flow a candidate for every binding.
type Locator interface {
	InIf(f Flow) string
	OutIf(f Flow) string
}

// EntryID names one ACL entry in one direction: the unit whose counts the
// kernel keeps (SPEC §4: counts are per entry and direction, across all the
// interfaces the ACL is applied to).
type EntryID struct {
	ACL    string
	Family acl.Family
	Dir    acl.Direction
	Seq    int
}

// LimitID names one connlimit of an entry by what it counts by (an entry
// has at most one connlimit per key: acl refuses two): Kind and PrefixLen
// as the compiler keys them (acl.Connlimit.LimitKey).
type LimitID struct {
	EntryID
	Kind      acl.KeyKind
	PrefixLen int
}

// limitOf is the LimitID of a connlimit of entry id.
func limitOf(id EntryID, c *acl.Connlimit) LimitID {
	k, l := c.LimitKey(id.Family)
	return LimitID{id, k, l}
}

// KeyID is one key of one limit of an entry: a source address, a prefix,
// a destination address, or "total".
type KeyID struct {
	LimitID
	Key string
}

// TotalKey is the key of `connlimit N total`.
const TotalKey = nft.TotalKey

// KeyCount is one line of `show access-list sessions`: a key of a limited
// entry with its open sessions and its limit. AtLimit is true when the next
// connection of the key would be refused.
type KeyCount struct {
	ACL    string
	Family acl.Family
	Dir    acl.Direction
	Seq    int
	// Kind and PrefixLen say which of the entry's connlimits the key is
	// of (what it counts by).
	Kind      acl.KeyKind
	PrefixLen int
	Key       string
	Sessions  int
	// Old is how many of them were open before the key's limit set
	// existed (they carry OldMark and are held in reservations, not in
	// the kernel's count).
	Old     int
	Limit   int
	AtLimit bool
}

// limit is the LimitID of the key's limit.
func (c KeyCount) limit() LimitID {
	return LimitID{EntryID{ACL: c.ACL, Family: c.Family, Dir: c.Dir, Seq: c.Seq}, c.Kind, c.PrefixLen}
}

// Attribution is where the open flows fall under a configuration.
type Attribution struct {
	// Flows are the open flows that were attributed (closed TCP flows are
	// left out, as nf_conncount leaves them out).
	Flows []Flow
	// Keys maps each limit key to its flows (indices into Flows), oldest
	// first.
	Keys map[KeyID][]int
	// Limits holds the connlimits of the limited entries.
	Limits map[LimitID]*acl.Connlimit
	// Actions holds each limited entry's action (Permit or Deny).
	Actions map[EntryID]acl.Action
	// Refused lists flows (indices into Flows) that some binding would
	// refuse now: the deciding entry denies, or no entry matches.
	Refused []int
	// Admitted maps each permit entry to the flows it decides (indices
	// into Flows), limited or not.
	Admitted map[EntryID][]int
}

// Attribute places every open flow under each binding whose ACL family
// matches and whose interfaces the flow passes (per loc; nil loc: all).
// Within a binding, entries are evaluated in seq order as the compiler does:
// the first entry that matches decides, except that `deny ... connlimit N`
// counts the flow and passes it on to the next entry (SPEC §4). Conditions
// conntrack cannot show (rate, quota, load-limit, block-for, user, and a
// time range unless the binding is AtNow) are treated as matching for
// permits and limits, and as not matching for plain denies, so that no
// session is ended on a guess.
func Attribute(bs []Binding, flows []Flow, loc Locator) *Attribution {
	return attributeOwned(bs, slices.Clone(flows), loc)
}

// attributeOwned is Attribute on a slice the caller gives up: it is
// filtered and sorted in place (a dump of 100k flows is 15 MB; no copy).
func attributeOwned(bs []Binding, flows []Flow, loc Locator) *Attribution {
	a := &Attribution{
		Keys:     map[KeyID][]int{},
		Limits:   map[LimitID]*acl.Connlimit{},
		Actions:  map[EntryID]acl.Action{},
		Admitted: map[EntryID][]int{},
	}
	a.Flows = slices.DeleteFunc(flows, func(f Flow) bool { return !f.Open() })
	sortByAge(a.Flows)
	refused := map[int]bool{}
	for _, b := range bs {
		for i, f := range a.Flows {
			if !b.passes(f, loc) {
				continue
			}
			if !a.evaluate(b, i, f) {
				refused[i] = true
			}
		}
	}
	for i := range a.Flows {
		if refused[i] {
			a.Refused = append(a.Refused, i)
		}
	}
	return a
}

// sortByAge orders flows oldest first: by conntrack start time where the
// kernel keeps it (nf_conntrack_timestamp), then by tuple for a stable order.
func sortByAge(fs []Flow) {
	slices.SortFunc(fs, func(a, b Flow) int {
		return cmp.Or(a.Start.Compare(b.Start), a.Src.Compare(b.Src),
			cmp.Compare(a.SrcPort, b.SrcPort), a.Dst.Compare(b.Dst), cmp.Compare(a.DstPort, b.DstPort),
			cmp.Compare(a.Proto, b.Proto))
	})
}

func (b Binding) passes(f Flow, loc Locator) bool {
	if f.Is6() != (b.ACL.Family == acl.IPv6) {
		return false
	}
	if loc == nil {
		return true
	}
	var ifn string
	if b.Dir == acl.In {
		ifn = loc.InIf(f)
	} else {
		ifn = loc.OutIf(f)
	}
	return ifn == "" || slices.Contains(b.Ifaces, ifn)
}

// evaluate runs flow i through the binding's entries, recording the keys it
// is counted under; it reports whether the ACL admits the flow.
func (a *Attribution) evaluate(b Binding, i int, f Flow) bool {
	id, ok := b.walk(f, func(k KeyID, cl *acl.Connlimit, act acl.Action) {
		a.Keys[k] = append(a.Keys[k], i)
		a.Limits[k.LimitID] = cl
		a.Actions[k.EntryID] = act
	})
	if ok {
		a.Admitted[id] = append(a.Admitted[id], i)
	}
	return ok
}

// walk runs a flow through the binding's entries as the compiler evaluates
// them, calling counted for each limit key the flow is counted under (with
// the limit and its entry's action). It returns the permit entry that
// admits the flow, or ok false when the ACL refuses it. Attribute attributes
// through it; the session Index through keyWalk, which counts the same.
func (b Binding) walk(f Flow, counted func(k KeyID, cl *acl.Connlimit, act acl.Action)) (admit EntryID, ok bool) {
	for _, e := range b.ACL.Entries {
		if e.Action == acl.Remark || !Matches(e, f) {
			continue
		}
		if len(e.Connlimits) > 0 && (e.Action == acl.Permit || e.Action == acl.Deny) {
			id := EntryID{ACL: b.ACL.Name, Family: b.ACL.Family, Dir: b.Dir, Seq: e.Seq}
			for j := range e.Connlimits {
				// Counted in each of the entry's limits, under its key there.
				cl := &e.Connlimits[j]
				counted(KeyID{limitOf(id, cl), KeyOf(cl, f)}, cl, e.Action)
			}
			if e.Action == acl.Deny {
				continue // below its limit, a limited deny passes the flow on
			}
		}
		if e.Action != acl.Permit && b.unseen(e) {
			// Why skip: whether this deny applies now depends on what
			// conntrack cannot show; never end a session on a guess.
			continue
		}
		if e.Action == acl.Permit {
			return EntryID{ACL: b.ACL.Name, Family: b.ACL.Family, Dir: b.Dir, Seq: e.Seq}, true
		}
		return EntryID{}, false
	}
	return EntryID{}, false // implicit deny
}

// unseen reports whether the entry has a condition that a flow of b
// cannot be checked against (load, rates, quotas, lockouts, the local
// user; its time range unless b is AtNow).
func (b Binding) unseen(e *acl.Entry) bool {
	return unseenAlways(e) || (!b.AtNow && e.TimeRange != "")
}

// unseenAlways reports whether e has a condition that no flow can be
// checked against.
func unseenAlways(e *acl.Entry) bool {
	return e.LoadLimit != nil || e.Rate != nil || e.Quota != nil ||
		e.BlockFor != nil || e.Owner != nil
}

// KeyOf is the limit key a flow is counted under (acl.Connlimit.KeyOf).
func KeyOf(c *acl.Connlimit, f Flow) string { return c.KeyOf(f.Src, f.Dst) }

// Matches reports whether the flow's original direction matches the entry's
// protocol, addresses and ports (acl.Entry.Matches).
func Matches(e *acl.Entry, f Flow) bool {
	return e.Matches(f.Proto, f.Src, f.Dst, f.SrcPort, f.DstPort)
}

// allowed is how many open sessions a key may hold before its next
// connection is refused: N for permit, N-1 for deny (a limited deny refuses
// at N including the new one).
func allowed(c *acl.Connlimit, act acl.Action) int {
	if act == acl.Deny {
		return max(c.N-1, 0)
	}
	return c.N
}

// Counts returns one KeyCount per limit key that has open sessions, sorted
// by family, ACL, direction, seq and key.
func (a *Attribution) Counts() []KeyCount {
	out := make([]KeyCount, 0, len(a.Keys))
	for k, idx := range a.Keys {
		c := a.Limits[k.LimitID]
		old := 0
		for _, i := range idx {
			if a.Flows[i].Mark&OldMark != 0 {
				old++
			}
		}
		out = append(out, KeyCount{
			ACL: k.ACL, Family: k.Family, Dir: k.Dir, Seq: k.Seq, Kind: k.Kind, PrefixLen: k.PrefixLen, Key: k.Key,
			Sessions: len(idx), Old: old, Limit: c.N,
			AtLimit: len(idx) >= allowed(c, a.Actions[k.EntryID]),
		})
	}
	sortCounts(out)
	return out
}

// TraceKeys turns the counts of one ACL (Counts, Tracker.Sessions) into
// packet-tracer's view of a key in direction dir (acl.TraceState.Key): a
// key without sessions holds none and is under its limit. Keys are told
// apart by the limit of the entry they count under.
func TraceKeys(kcs []KeyCount, f acl.Family, dir acl.Direction) func(seq int, cl acl.Connlimit, key string) acl.KeyState {
	type id struct {
		seq  int
		kind acl.KeyKind
		plen int
		key  string
	}
	m := map[id]acl.KeyState{}
	for _, k := range kcs {
		if k.Dir == dir {
			m[id{k.Seq, k.Kind, k.PrefixLen, k.Key}] = acl.KeyState{Sessions: k.Sessions, Old: k.Old, AtLimit: k.AtLimit}
		}
	}
	return func(seq int, cl acl.Connlimit, key string) acl.KeyState {
		kind, plen := cl.LimitKey(f)
		return m[id{seq, kind, plen, key}]
	}
}

// sortCounts orders counts by family, ACL, direction, seq and key (keys
// parsed once, not per comparison).
func sortCounts(cs []KeyCount) {
	type item struct {
		c KeyCount
		k keyOrder
	}
	items := make([]item, len(cs))
	for i, c := range cs {
		items[i] = item{c, orderOf(c.Key)}
	}
	slices.SortFunc(items, func(a, b item) int {
		return cmp.Or(cmp.Compare(a.c.Family, b.c.Family), cmp.Compare(a.c.ACL, b.c.ACL),
			cmp.Compare(a.c.Dir, b.c.Dir), cmp.Compare(a.c.Seq, b.c.Seq),
			cmp.Compare(a.c.Kind, b.c.Kind), cmp.Compare(b.c.PrefixLen, a.c.PrefixLen), a.k.compare(b.k))
	})
	for i := range items {
		cs[i] = items[i].c
	}
}

// keyOrder is a key parsed for sorting: addresses and prefixes in numeric
// order after words such as "total".
type keyOrder struct {
	word string
	p    netip.Prefix
}

func orderOf(key string) keyOrder {
	if a, err := netip.ParseAddr(key); err == nil {
		return keyOrder{p: netip.PrefixFrom(a, a.BitLen())}
	}
	if p, err := netip.ParsePrefix(key); err == nil {
		return keyOrder{p: p}
	}
	return keyOrder{word: key}
}

func (a keyOrder) compare(b keyOrder) int {
	aw, bw := a.p.IsValid(), b.p.IsValid()
	if !aw || !bw {
		return cmp.Or(cmp.Compare(b2i(aw), b2i(bw)), cmp.Compare(a.word, b.word))
	}
	return cmp.Or(a.p.Addr().Compare(b.p.Addr()), cmp.Compare(a.p.Bits(), b.p.Bits()))
}

// compareKeys orders keys as keyOrder does.
func compareKeys(a, b string) int { return orderOf(a).compare(orderOf(b)) }

// Excess returns the flows the configuration would not admit now, newest
// first: flows that a binding refuses (a deny decides, or no entry matches),
// and under each limit key the sessions above what the limit allows (the
// oldest are kept). These are what `connlimit existing-sessions reset` ends.
func (a *Attribution) Excess() []Flow {
	pick := map[int]bool{}
	for _, i := range a.Refused {
		pick[i] = true
	}
	for k, idx := range a.Keys {
		n := allowed(a.Limits[k.LimitID], a.Actions[k.EntryID])
		for _, i := range idx[min(n, len(idx)):] {
			pick[i] = true
		}
	}
	return a.newestFirst(pick)
}

// Select returns the open flows that ACL aclName admits or counts (seq 0:
// under any entry, else under entry seq) from source src (an invalid src:
// any), newest first. It serves `clear access-list sessions ip NAME [seq N]
// [source ADDR]`.
func (a *Attribution) Select(aclName string, f acl.Family, seq int, srcs ...netip.Addr) []Flow {
	from := map[netip.Addr]bool{}
	for _, s := range srcs {
		from[s.Unmap()] = true
	}
	pick := map[int]bool{}
	add := func(id EntryID, idx []int) {
		if id.ACL != aclName || id.Family != f || (seq != 0 && id.Seq != seq) {
			return
		}
		for _, i := range idx {
			if len(from) == 0 || from[a.Flows[i].Src.Unmap()] {
				pick[i] = true
			}
		}
	}
	for k, idx := range a.Keys {
		add(k.EntryID, idx)
	}
	for id, idx := range a.Admitted {
		add(id, idx)
	}
	return a.newestFirst(pick)
}

func (a *Attribution) newestFirst(pick map[int]bool) []Flow {
	out := make([]Flow, 0, len(pick))
	for i := len(a.Flows) - 1; i >= 0; i-- {
		if pick[i] {
			out = append(out, a.Flows[i])
		}
	}
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
