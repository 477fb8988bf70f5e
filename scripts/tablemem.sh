#!/bin/sh
# Kernel memory of a whole applied table: the N-entry ACL of
# scripts/gen-acl.sh (default 10000 entries, every hundredth with
# connlimit 3) applied by aclagent in a throw-away network namespace, once
# per variant and round, the variants alternating:
#   sized     --limit-set-size 65535 (the limit sets as declared before
#             issue 13: each preallocates its hash table, about 2 MiB)
#   unsized   the default (the limit sets grow on demand)
#   base      a 1-entry ACL, default options: what the procedure costs
#             besides the table (conntrack in the namespace, what the killed
#             agent leaves behind); subtract it from the others
# Needs root; the host's ruleset, interfaces and sysctls are not touched.
# For each measurement a fresh namespace with a veth eth1 is made first,
# then MemFree, SUnreclaim and Percpu are read, the agent applies the config (log line
# "ready") and is killed with -9 (the table stays in the kernel), and
# they are read again once it has exited: the drop is the
# table (rules, named counters, sets, chains) plus noise. Every namespace
# is kept until the end: freed pages wait in per-CPU lists that MemFree
# does not count, and a following allocation would take them back without
# MemFree moving (see scripts/setmem.sh). A first, uncounted round warms
# the page cache. Still noisy (other processes allocate meanwhile): run it
# on an idle machine, several rounds. See BENCHMARKS.md.
#
#   scripts/tablemem.sh                     ROUNDS=3 N=10000 VARIANTS="sized unsized base"
#   BIN=/dir/with/aclagent scripts/tablemem.sh   (another build)
set -eu
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3}
n=${N:-10000}
variants=${VARIANTS:-"sized unsized base"}
tmp=$(mktemp -d)
: >"$tmp/namespaces"
cleanup() {
	[ -f "$tmp/pid" ] && kill -9 "$(cat "$tmp/pid")" 2>/dev/null || true
	while read -r ns; do ip netns del "$ns" 2>/dev/null || true; done <"$tmp/namespaces"
	rm -rf "$tmp"
}
trap cleanup EXIT
if [ -n "${BIN:-}" ]; then
	cp "$BIN/aclagent" "$tmp/"
else
	go build -o "$tmp/aclagent" ./cmd/aclagent
fi
scripts/gen-acl.sh "$n" >"$tmp/startup-config"
scripts/gen-acl.sh 1 >"$tmp/base-config"

kib() { awk -v k="$1:" '$1 == k {print $2}' /proc/meminfo; }

# measure VARIANT: prints the drop of MemFree and the growth of
# SUnreclaim (the kernel's unreclaimable slab) and Percpu in KiB (run in a
# subshell: what it must keep goes to files).
measure() {
	ns=tablemem$$_$(wc -l <"$tmp/namespaces")
	echo "$ns" >>"$tmp/namespaces"
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	ip -n "$ns" link add eth1 type veth peer name eth1p
	ip -n "$ns" link set eth1 up
	case $1 in
	sized) size=65535 ;;
	*) size=0 ;;
	esac
	d=$tmp/$ns
	mkdir -p "$d"
	if [ "$1" = base ]; then
		cp "$tmp/base-config" "$d/startup-config"
	else
		cp "$tmp/startup-config" "$d/"
	fi
	sleep 2
	free0=$(kib MemFree) slab0=$(kib SUnreclaim) pcpu0=$(kib Percpu)
	ip netns exec "$ns" "$tmp/aclagent" --socket "$d/a.sock" --config "$d/startup-config" \
		--mgmt-interface lo --admin-group root --limit-set-size "$size" --limit-set-memory 0 >"$d/log" 2>&1 &
	echo $! >"$tmp/pid"
	until grep -q 'msg=ready' "$d/log"; do
		kill -0 "$(cat "$tmp/pid")" 2>/dev/null || { cat "$d/log"; exit 1; }
		sleep 0.1
	done
	kill -9 "$(cat "$tmp/pid")"
	wait "$(cat "$tmp/pid")" 2>/dev/null || true
	rm -f "$tmp/pid"
	sleep 2
	free1=$(kib MemFree) slab1=$(kib SUnreclaim) pcpu1=$(kib Percpu)
	echo "$((free0 - free1)) $((slab1 - slab0)) $((pcpu1 - pcpu0))"
}

echo "kernel $(uname -r); $n entries ($((n / 100)) with connlimit 3); KiB per applied table"
measure unsized >/dev/null # warm-up, not counted
printf '%-8s %6s %12s %12s %12s\n' variant round MemFree-drop SUnreclaim+ Percpu+
r=1
while [ $r -le "$rounds" ]; do
	for v in $variants; do
		set -- $(measure "$v")
		printf '%-8s %6s %12s %12s %12s\n' "$v" "$r" "$1" "$2" "$3"
	done
	r=$((r + 1))
done
