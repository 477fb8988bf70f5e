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
// default of 64 buckets and grows with its elements. This memory is not
// charged to the memory cgroup of the process that creates the set, so
// nothing but this estimate stops a configuration from taking gigabytes of
// kernel memory (measured with scripts/setmem.sh; BENCHMARKS.md, "Kernel
// memory per limit set").

const (
	bucketBytes    = 16 // one bucket pointer, with the power-of-two rounding of the allocation
	defaultBuckets = 64 // rhashtable's HASH_DEFAULT_SIZE: the table of an unsized set
	minBuckets     = 4  // rhashtable's HASH_MIN_SIZE
)

// SetTableMemory estimates the kernel memory, in bytes, that a dynamic set
// declared with the given size allocates for its hash table when it is
// created (0: an unsized set). Elements cost more as keys arrive.
func SetTableMemory(size uint32) uint64 {
	if size == 0 {
		return defaultBuckets * bucketBytes
	}
	hint := uint64(size) * 4 / 3
	buckets := uint64(1) << bits.Len64(hint-1) // roundup_pow_of_two; hint >= 1
	return max(buckets, minBuckets) * bucketBytes
}

// SetMemory estimates the kernel memory, in bytes, that the hash tables of
// the ruleset's sets take as soon as it is applied (SetTableMemory of each
// set). Sets that an apply keeps are counted too: this is what the table
// holds once the ruleset is in force.
func (r *Ruleset) SetMemory() uint64 {
	var n uint64
	for _, s := range r.Sets {
		n += SetTableMemory(s.Size)
	}
	return n
}

// checkSetMemory refuses a ruleset whose sets would take more kernel memory
// than Options.MaxSetMemory (0: no limit).
func (b *builder) checkSetMemory() {
	limit := b.opt.MaxSetMemory
	if limit == 0 {
		return
	}
	need := b.rs.SetMemory()
	if need <= limit {
		return
	}
	sized, maps := 0, 0
	for _, s := range b.rs.Sets {
		switch {
		case s.Kind == SetVerdictMap:
			maps++ // classification maps hold what the config says, not keys
		case s.Size == b.opt.SetSize:
			sized++
		}
	}
	b.errs = append(b.errs, &acl.Error{Msg: fmt.Sprintf(
		"the limit sets of this configuration would take about %s of kernel memory (%d sets of size %d and %d others), more than the %s allowed (aclagent --limit-set-memory; a smaller --limit-set-size lowers it)",
		mib(need), sized, b.opt.SetSize, len(b.rs.Sets)-sized-maps, mib(limit))})
}

// mib renders a number of bytes in MiB for messages: "1318 MiB", "0.5 MiB".
func mib(n uint64) string {
	const mib = 1 << 20
	if n >= 10*mib {
		return fmt.Sprintf("%d MiB", (n+mib/2)/mib)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/mib)
}
