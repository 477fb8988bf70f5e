package conntrack

// Counting sessions that were open before a limit existed: the layers,
// the gate and where admission is conservative are described in the
// package doc (doc.go).

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

// memberSet is the library form of a reservation set for element
// operations: keyed like the limit set (the compiler declares the set;
// Reserver never creates it). Elements without expressions are never
// collected.
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
