package conntrack

// Counting sessions that were open before a limit existed.
//
// Why layers and not pre-created elements: nf_conncount never adds an
// already-open connection to a count (KERNEL-NOTES), so the obvious plan is
// to create the key's element by hand with the remaining budget (`add
// element ... { 10.0.0.1 ct count over 1 }`). Measured here (Linux 6.18,
// TestKernelPrecreatedElementIsCollected): an element whose count is 0 is
// removed by the set's garbage collector within seconds, hand-made or not,
// and the next connection then creates a fresh element with the rule's full
// budget. google/nftables v0.3.0 cannot send element expressions either.
//
// So the budget of old sessions lives in plain membership sets that the
// kernel never collects, and the counting stays in elements that the rules
// create. For a limit rule `add @S { KEY ct count over T }` the ruleset has,
// before it and with the same match and refusal (names and sets from
// package layers; j runs over layers.Layers(T)):
//
//	meta nfproto @S_g REFUSE                                 # gate, closed while recounting
//	KEY @S_rf REFUSE                                         # old sessions fill the limit
//	KEY @S_r1 add @S_l1 { KEY ct count over T-1 } REFUSE     # layer 1
//	KEY @S_r2 add @S_l2 { KEY ct count over T-2 } REFUSE     # layer 2
//	KEY @S_r4 add @S_l4 { KEY ct count over T-4 } REFUSE     # layer 4 ...
//	add @S { KEY ct count over T } REFUSE                    # the limit itself
//
// A key with E old sessions is held at depth D = the smallest layer >= E
// (T, i.e. S_rf, when none): it is in S_rj for every layer j <= D. Every
// new connection of the key then goes through the layers it is in, each
// counting it, so the open new sessions stay <= T-D <= T-E: no key ever holds
// more than T. As old sessions end, the key leaves the layers above its new
// depth; the layers below it have counted every new session from the start,
// so the budget that comes back is exact. Depths are powers of two (or T),
// so a key can get D-E fewer new sessions than its exact budget — never
// more, and fewer than E (exact when E is 1, 2 or a power of two, and always
// for T <= 3).
//
// The order that leaves no window (see Tracker): before the ruleset with a
// new limit set S is installed, Gate creates S_g with its element, closing the
// entry to new connections; after the install every open session of the
// entry is old, Plan counts them from a dump, they get OldMark, and Write
// fills the layers and opens the gate in one transaction. The entry refuses
// new connections only for the time of that dump (a short, conservative
// under-admission). Refresh later shrinks depths as old sessions (found
// cheaply by OldMark, filtered in the kernel) end.

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/conntrack/layers"
)

// OldMark is the ct mark bit of a session that was open before the limit
// set that would count it existed: it is held in a reservation instead.
const OldMark uint32 = 0x20000000

// LimitSet is one connlimit set of the ruleset, `add @Name { KEY ct count
// over Over }`, as the session code needs it.
type LimitSet struct {
	Name      string
	Entry     EntryID
	Key       acl.KeyKind
	PrefixLen int
	Over      int
	Size      uint32
}

// Reservation is a key of a limit set held at a depth.
type Reservation struct {
	Set   string
	Key   string
	Depth int
}

func compareRes(a, b Reservation) int {
	return cmp.Or(cmp.Compare(a.Set, b.Set), compareKeys(a.Key, b.Key))
}

// Plan returns the reservations for the given limit sets: every key with
// flows under the set's entry in a, at the depth of its number of flows.
// For a set the kernel has just created, a holds all open flows (they are
// all old); for Refresh, only those with OldMark.
func Plan(sets []LimitSet, a *Attribution) []Reservation {
	var out []Reservation
	for _, s := range sets {
		for k, idx := range a.Keys {
			if k.EntryID != s.Entry {
				continue
			}
			if d := layers.Depth(s.Over, len(idx)); d > 0 {
				out = append(out, Reservation{Set: s.Name, Key: k.Key, Depth: d})
			}
		}
	}
	slices.SortFunc(out, compareRes)
	return out
}

// Shrink returns cur with each key's depth lowered to what its remaining old
// sessions need (never raised: a layer a key was not in from the start has
// not counted its new sessions). Keys absent from now are dropped.
func Shrink(cur, now []Reservation) []Reservation {
	need := map[[2]string]int{}
	for _, r := range now {
		need[[2]string{r.Set, r.Key}] = r.Depth
	}
	var out []Reservation
	for _, r := range cur {
		if d := min(r.Depth, need[[2]string{r.Set, r.Key}]); d > 0 {
			out = append(out, Reservation{Set: r.Set, Key: r.Key, Depth: d})
		}
	}
	slices.SortFunc(out, compareRes)
	return out
}

// OldFlows returns the flows of a that are counted under the given sets'
// entries: the sessions to mark with OldMark when their sets are new.
func OldFlows(sets []LimitSet, a *Attribution) []Flow {
	want := map[EntryID]bool{}
	for _, s := range sets {
		want[s.Entry] = true
	}
	pick := map[int]bool{}
	for k, idx := range a.Keys {
		if want[k.EntryID] {
			for _, i := range idx {
				pick[i] = true
			}
		}
	}
	return a.newestFirst(pick)
}

// MarkOld sets OldMark on the flows (keeping their other mark bits).
func MarkOld(t Table, flows []Flow) error {
	var first error
	for _, f := range flows {
		if f.Mark&OldMark != 0 {
			continue
		}
		if err := t.SetMark(f, f.Mark|OldMark); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// keyBytes encodes a key as a set element of the limit set.
func keyBytes(s LimitSet, key string) ([]byte, error) {
	if s.Key == acl.Total {
		return []byte{nfproto(s.Entry.Family)}, nil
	}
	if s.Key == acl.PerPrefix {
		p, err := netip.ParsePrefix(key)
		if err != nil {
			return nil, fmt.Errorf("reservation key %q of %s: %w", key, s.Name, err)
		}
		return p.Addr().AsSlice(), nil
	}
	a, err := netip.ParseAddr(key)
	if err != nil {
		return nil, fmt.Errorf("reservation key %q of %s: %w", key, s.Name, err)
	}
	return a.Unmap().AsSlice(), nil
}

// keyString decodes a set element back into a key.
func keyString(s LimitSet, b []byte) (string, bool) {
	if s.Key == acl.Total {
		return TotalKey, len(b) == 1
	}
	a, ok := netip.AddrFromSlice(b)
	if !ok {
		return "", false
	}
	if s.Key == acl.PerPrefix {
		return netip.PrefixFrom(a, s.PrefixLen).String(), true
	}
	return a.String(), true
}

func nfproto(f acl.Family) byte {
	if f == acl.IPv6 {
		return 10 // NFPROTO_IPV6
	}
	return 2 // NFPROTO_IPV4
}

// memberSet is the library form of a reservation set: keyed like the limit
// set, created exactly as internal/nft creates every set (`flags dynamic`
// with an explicit size), so that the applier's AddSet of the same set is a
// no-op. Elements without expressions are never collected.
func memberSet(t *nftables.Table, s LimitSet, name string) *nftables.Set {
	ks := &nftables.Set{Table: t, Name: name, Dynamic: true, Size: s.Size}
	switch {
	case s.Key == acl.Total:
		ks.KeyType, ks.KeyByteOrder = nftables.TypeNFProto, binaryutil.NativeEndian
	case s.Entry.Family == acl.IPv6:
		ks.KeyType, ks.KeyByteOrder = nftables.TypeIP6Addr, binaryutil.BigEndian
	default:
		ks.KeyType, ks.KeyByteOrder = nftables.TypeIPAddr, binaryutil.BigEndian
	}
	return ks
}

func gateSet(t *nftables.Table, s LimitSet) *nftables.Set {
	return &nftables.Set{Table: t, Name: layers.GateName(s.Name), Dynamic: true, Size: 2,
		KeyType: nftables.TypeNFProto, KeyByteOrder: binaryutil.NativeEndian}
}
