#!/bin/sh
# Kernel memory of a dynamic nftables set by declared size, against the
# estimate of nft.SetTableMemory (16 bytes x roundup_pow_of_two(size*4/3)).
# Needs root. For each size, creates N sets `type ipv4_addr; size S; flags
# dynamic;` (no size for 0) with `nft -f` in a throw-away network namespace
# and reports the drop of MemFree per set, once per round (ROUNDS, default
# 3); the host's ruleset is not touched. Every round adds a table of its own
# and the tables are deleted only after the last round: freed pages wait in
# per-CPU lists, which MemFree does not count, and a following allocation of
# the same size takes them back without MemFree moving (an earlier version
# measured ~0 for size 1536 that way). Still noisy (other processes allocate
# meanwhile): run it on an idle machine. See BENCHMARKS.md.
#
#   scripts/setmem.sh [SIZE...]      default: 0 2 1024 1536 1537 4096 16384 65535
set -eu
rounds=${ROUNDS:-3}
[ $# -gt 0 ] || set -- 0 2 1024 1536 1537 4096 16384 65535
dir=$(mktemp -d)
ns=setmem$$
cleanup() {
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT
ip netns add "$ns"

memfree() { echo $(($(awk '/^MemFree:/ {print $2}' /proc/meminfo) * 1024)); }

# estimate SIZE: bytes, as nft.SetTableMemory computes them.
estimate() {
	if [ "$1" -eq 0 ]; then echo 1024; return; fi
	hint=$(($1 * 4 / 3)) b=1
	while [ "$b" -lt "$hint" ]; do b=$((b * 2)); done
	[ "$b" -ge 4 ] || b=4
	echo $((b * 16))
}

echo "kernel $(uname -r); MemFree drop per set in bytes, one figure per round"
printf '%8s %6s %10s  %s\n' size sets estimate measured
for size in "$@"; do
	# About 256 MiB per round (N overrides), so that the sets outweigh the noise.
	n=${N:-$((256 * 1024 * 1024 / $(estimate "$size")))}
	[ "$n" -le 4000 ] || n=4000
	[ "$n" -ge 100 ] || n=100
	f=$dir/sets.nft
	{
		echo "table inet setmem_ROUND {"
		i=0
		while [ $i -lt "$n" ]; do
			if [ "$size" -eq 0 ]; then
				echo " set s$i { type ipv4_addr; flags dynamic; }"
			else
				echo " set s$i { type ipv4_addr; size $size; flags dynamic; }"
			fi
			i=$((i + 1))
		done
		echo "}"
	} >"$f"
	got=""
	r=0
	while [ $r -lt "$rounds" ]; do
		sed "s/_ROUND/_$r/" "$f" >"$f.$r"
		sleep 1
		before=$(memfree)
		ip netns exec "$ns" nft -f "$f.$r"
		after=$(memfree)
		got="$got $(((before - after) / n))"
		r=$((r + 1))
	done
	ip netns exec "$ns" nft flush ruleset
	printf '%8s %6s %10s %s\n' "$size" "$n" "$(estimate "$size")" "$got"
done
