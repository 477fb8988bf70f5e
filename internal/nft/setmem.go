package nft

import (
	"fmt"
	"math/bits"

	"github.com/slxsh/slxsh/internal/acl"
)

// Kernel memory of the sets.
//
// Why: the kernel backs every dynamic set with a resizable hash table
// (nft_set_rhash) and sizes it from the declared size up front, before the
// set holds a single element: rhashtable_init takes the size as its element
// hint and allocates roundup_pow_of_two(size*4/3) bucket pointers (8 bytes
// each) behind a 64-byte header, and the allocation is rounded up to a
// power of two, so about 16 bytes per bucket: 2 MiB for `size 65535`,
// 128 KiB for `size 4096`. An unsized set starts with the rhashtable
// default of 64 buckets and grows with its elements, up to the cap that
// the kernel gives a set a rule adds to (UnsizedSetCap). Every key then
// costs its element (a slab object, with the element's expression state),
// and the table doubles whenever the keys pass 3/4 of its buckets, so a
// full unsized set holds as large a table as a set declared with its cap.
// This memory is not charged to the memory cgroup of the process that
// creates the set (the packet path adds the keys), so nothing but this
// estimate stops a configuration from taking gigabytes of kernel memory
// (measured with scripts/setmem.sh and scripts/tablemem.sh; BENCHMARKS.md,
// "Kernel memory per limit set").

const (
	bucketBytes    = 16 // one bucket pointer, with the power-of-two rounding of the allocation
	defaultBuckets = 64 // rhashtable's HASH_DEFAULT_SIZE: the table of an unsized set
	minBuckets     = 4  // rhashtable's HASH_MIN_SIZE
)

// Bytes of one element by what it carries (the slab objects the kernel
// allocates per key, measured with /proc/slabinfo for 8 x 65535 keys
// added to unsized sets, IPv4 and IPv6 alike): the element itself, plus
// the expression's own state for connlimit (the connection list) and
// limit (the token bucket). Quota elements were not measured (nft 1.0.6
// cannot add them): counted as the larger limit ones. The connections a
// connlimit element counts (nf_conncount_tuple, one per admitted
// connection) are not included: they are bounded by the conntrack table,
// not by the set.
const (
	plainElementBytes     = 64       // kmalloc-64: key, flags, timeout (blocked sources)
	connlimitElementBytes = 96 + 32  // kmalloc-96 + the nf_conncount_list (kmalloc-32)
	limitElementBytes     = 128 + 32 // kmalloc-128 + the token bucket (kmalloc-32)
)

// SetTableMemory estimates the kernel memory, in bytes, that a dynamic set
// declared with the given size allocates for its hash table when it is
// created (0: an unsized set). Elements cost more as keys arrive
// (SetMaxMemory).
func SetTableMemory(size uint32) uint64 {
	if size == 0 {
		return defaultBuckets * bucketBytes
	}
	hint := uint64(size) * 4 / 3
	buckets := uint64(1) << bits.Len64(hint-1) // roundup_pow_of_two; hint >= 1
	return max(buckets, minBuckets) * bucketBytes
}

// SetMaxMemory estimates the most kernel memory, in bytes, that a set can
// take. A limit set, which the packet path fills with the key of every
// new source (or prefix, destination), can grow to its Capacity: then it
// holds the table for that many keys and their elements, whether it was
// declared with that size (the table allocated at once) or unsized (the
// table grown on demand). Every other set counts what it takes when
// created: gates and flags hold one element, and the reservation sets
// only the keys that the agent writes (keys with sessions open before
// their limit), which the conntrack table bounds.
func SetMaxMemory(s *Set) uint64 {
	per := s.elementBytes()
	if per == 0 {
		return SetTableMemory(s.Size)
	}
	n := uint64(s.Capacity())
	return SetTableMemory(uint32(n)) + n*per
}

// elementBytes is the memory of one key of a limit set, 0 for the sets
// that are not limit sets (isLimit).
func (s *Set) elementBytes() uint64 {
	if !s.isLimit() {
		return 0
	}
	switch s.Kind {
	case SetConnlimit:
		return connlimitElementBytes
	case SetRate, SetQuota:
		return limitElementBytes
	}
	return plainElementBytes
}

// isLimit reports a limit set: one that the packet path adds the key of
// any matching connection to, and that Options.SetSize sizes (a connlimit
// set, not its layer counts; a rate or quota set; a block-for set, not
// its full flag).
func (s *Set) isLimit() bool {
	switch s.Kind {
	case SetConnlimit:
		return s.Limit == ""
	case SetRate, SetQuota:
		return true
	case SetBlocked:
		return s.Key != KeyNFProto
	}
	return false
}

// SetMemory estimates the most kernel memory, in bytes, that the ruleset's
// sets can take once it is in force (SetMaxMemory of each set): every
// limit set full. This is what Options.MaxSetMemory bounds. Sets that an
// apply keeps are counted too.
//
// Classification maps (Set.Map) are left out: they are not hash
// tables, and hold what the configuration says (about one entry each),
// not keys that traffic adds; BENCHMARKS.md measures them with the table.
func (r *Ruleset) SetMemory() uint64 {
	var n uint64
	for _, s := range r.Sets {
		if s.Map == nil {
			n += SetMaxMemory(s)
		}
	}
	return n
}

// SetMemoryApplied estimates the kernel memory, in bytes, that the hash
// tables of the ruleset's sets take as soon as it is applied, before any
// key arrives (SetTableMemory of each set).
func (r *Ruleset) SetMemoryApplied() uint64 {
	var n uint64
	for _, s := range r.Sets {
		if s.Map == nil {
			n += SetTableMemory(s.Size)
		}
	}
	return n
}

// maxLimitsPerConn is how many connlimit sets one connection can be
// counted in: each of the four connlimits of the entry it matches, in the
// `in` and the `out` list it passes.
const maxLimitsPerConn = 8

// boundedSetMemory is SetMemory with the keys of all connlimit sets
// together bounded by the conntrack table (ctMax entries; 0: unknown): a
// connlimit key stays in its set only while some connection it counts is
// tracked (the kernel drops an element whose count reaches zero), so the
// sets cannot all be full at once unless the table could hold that many
// connections.
func (r *Ruleset) boundedSetMemory(ctMax uint64) uint64 {
	var n, conn, keys uint64
	for _, s := range r.Sets {
		switch {
		case s.Map != nil:
		case s.Kind == SetConnlimit && s.isLimit():
			conn += SetMaxMemory(s)
			keys += uint64(s.Capacity())
		default:
			n += SetMaxMemory(s)
		}
	}
	if bound := maxLimitsPerConn * ctMax; ctMax > 0 && keys > bound {
		// The memory of full sets, for as many keys as can be at once
		// (per key about the same whatever the set).
		conn = uint64(float64(conn) * float64(bound) / float64(keys))
	}
	return n + conn
}

// checkSetMemory refuses a ruleset whose sets could take more kernel
// memory than Options.MaxSetMemory (0: no limit).
func (b *builder) checkSetMemory() {
	limit := b.opt.MaxSetMemory
	if limit == 0 {
		return
	}
	need := b.rs.boundedSetMemory(b.opt.ConntrackMax)
	if need <= limit {
		return
	}
	limits, maps := 0, 0
	for _, s := range b.rs.Sets {
		switch {
		case s.isLimit():
			limits++
		case s.Map != nil:
			maps++ // classification maps hold what the config says, not keys
		}
	}
	capacity := b.opt.SetSize
	if capacity == 0 {
		capacity = UnsizedSetCap
	}
	b.errs = append(b.errs, &acl.Error{Msg: fmt.Sprintf(
		"the limit sets of this configuration could take about %s of kernel memory when full (%d limit sets of up to %d keys each, connlimit keys no more than the conntrack table allows; %s when applied; and %d other sets), more than the %s allowed (aclagent --limit-set-memory; a smaller --limit-set-size lowers it)",
		mib(need), limits, capacity, mib(b.rs.SetMemoryApplied()), len(b.rs.Sets)-limits-maps, mib(limit))})
}

// mib renders a number of bytes in MiB for messages: "1318 MiB", "2.5 MiB",
// and in KiB below 1 MiB: "7 KiB".
func mib(n uint64) string {
	const kib, mib = 1 << 10, 1 << 20
	switch {
	case n >= 10*mib:
		return fmt.Sprintf("%d MiB", (n+mib/2)/mib)
	case n >= mib:
		return fmt.Sprintf("%.1f MiB", float64(n)/mib)
	}
	return fmt.Sprintf("%d KiB", (n+kib-1)/kib)
}
