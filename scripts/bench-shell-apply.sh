#!/bin/sh
# The whole path of a large config (issue 13): `slxsh -f` of an N-entry
# ACL (scripts/gen-acl.sh) into a running aclagent with an empty config,
# against `nft -f` of the table that it produced (`nft list table`),
# alternating in the same run, in throw-away network namespaces; then a
# one-line change through slxsh against nft making the same change to the
# same table (the entry's map element swapped in one `nft -f`) and against
# `nft replace rule` of one rule of the entry's chain. Prints
# seconds per round and the medians' ratios. Needs root.
#   SIZES="10000 50000" ROUNDS=3 scripts/bench-shell-apply.sh
set -eu
cd "$(dirname "$0")/.."
sizes=${SIZES:-"10000 50000"}
rounds=${ROUNDS:-3}
tmp=$(mktemp -d)
ns=slxapply$$
cleanup() {
	[ -f "$tmp/pid" ] && kill -9 "$(cat "$tmp/pid")" 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/aclagent" ./cmd/aclagent
go build -o "$tmp/slxsh" ./cmd/slxsh
chmod 755 "$tmp"
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR] = $1} END {print NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
fresh() {
	ip netns del "$ns" 2>/dev/null || true
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	ip -n "$ns" link add eth1 type veth peer name eth1p
	ip -n "$ns" link set eth1 up
}
start() {
	: >"$tmp/log"
	: >"$tmp/startup-config"
	rm -f "$tmp/running-config" "$tmp/last-good-config" "$tmp"/nft-handles* # each round from nothing
	ip netns exec "$ns" "$tmp/aclagent" --socket "$tmp/a.sock" --config "$tmp/startup-config" \
		--mgmt-interface lo --admin-group root >"$tmp/log" 2>&1 &
	echo $! >"$tmp/pid"
	until grep -q 'msg=ready' "$tmp/log"; do
		kill -0 "$(cat "$tmp/pid")" 2>/dev/null || { cat "$tmp/log"; exit 1; }
		sleep 0.05
	done
}
stop() { kill -9 "$(cat "$tmp/pid")"; wait "$(cat "$tmp/pid")" 2>/dev/null || true; rm -f "$tmp/pid"; }
slx() { "$tmp/slxsh" --socket "$tmp/a.sock" "$@"; }
echo "kernel $(uname -r), $(nproc) cpus, $rounds alternating rounds"
for n in $sizes; do
	{ echo "configure terminal"; scripts/gen-acl.sh "$n"; } >"$tmp/conf"
	seq=$((n / 2))
	printf 'configure terminal\nip access-list extended big\nno seq %s\nseq %s permit tcp host 10.200.%d.%d any eq 2070\nend\n' \
		"$seq" "$seq" $((seq / 256 % 256)) $((seq % 256)) >"$tmp/change"
	ours="" theirs="" change="" nftchange="" replace=""
	for r in $(seq "$rounds"); do
		fresh
		start
		t0=$(now)
		slx -f "$tmp/conf" >"$tmp/out" 2>&1 || { cat "$tmp/out"; exit 1; }
		ours="$ours $(since "$t0")"
		# The table as slxsh made it: nft lists a set that a rule adds to
		# with the kernel's cap as its size, which nft -f would preallocate.
		ip netns exec "$ns" nft list table inet slxsh | grep -v '^[[:space:]]*size 65535$' >"$tmp/table.nft"
		t0=$(now)
		slx -f "$tmp/change" >"$tmp/out" 2>&1 || { cat "$tmp/out"; exit 1; }
		change="$change $(since "$t0")"
		stop
		# nft: the table that slxsh made, loaded into an empty namespace...
		fresh
		t0=$(now)
		ip netns exec "$ns" nft -f "$tmp/table.nft"
		theirs="$theirs $(since "$t0")"
		# ...and the same one-entry change (in one transaction): the entry
		# (every hundredth has a connlimit: a `goto` element of its run's
		# verdict map) becomes a plain permit (an element of the run's
		# counter map, which names its counter).
		old=$(grep -m1 -o "[0-9./]* \. tcp \. [0-9]* : goto ip_big_in_$seq\b" "$tmp/table.nft" | sed 's/ : goto.*//')
		map=$(awk -v s="goto ip_big_in_$seq" '/^\tmap /{m=$2} index($0, s){print m; exit}' "$tmp/table.nft")
		printf 'delete element inet slxsh %s { %s }\nadd element inet slxsh %s_c { 10.200.%d.%d . tcp . 2070 : "ip_big_in_%s_matches" }\n' \
			"$map" "$old" "$map" $((seq / 256 % 256)) $((seq % 256)) "$seq" >"$tmp/nftchange"
		t0=$(now)
		ip netns exec "$ns" nft -f "$tmp/nftchange"
		nftchange="$nftchange $(since "$t0")"
		# ...and the anchor of the issue: replacing one rule by its handle.
		h=$(ip netns exec "$ns" nft -a list chain inet slxsh "ip_big_in_$seq" | grep -o 'handle [0-9]*' | tail -1 | cut -d' ' -f2)
		t0=$(now)
		ip netns exec "$ns" nft replace rule inet slxsh "ip_big_in_$seq" handle "$h" \
			meta l4proto tcp counter name "ip_big_in_${seq}_matches" return comment "\"acl=big dir=in seq=$seq\""
		replace="$replace $(since "$t0")"
	done
	mo=$(echo "$ours" | median) mt=$(echo "$theirs" | median) mc=$(echo "$change" | median) mn=$(echo "$nftchange" | median)
	mr=$(echo "$replace" | median)
	echo "entries $n: slxsh -f:$ours s; nft -f:$theirs s; slxsh change:$change s; nft element change:$nftchange s; nft replace rule:$replace s"
	echo "entries $n: median slxsh -f $mo s, nft -f $mt s, ratio $(echo "scale=2; $mo / $mt" | bc);" \
		"change $mc s = $(echo "scale=3; $mc / $mo" | bc) x the full apply, $(echo "scale=2; $mc / $mn" | bc) x nft's element change ($mn s)," \
		"$(echo "scale=2; $mc / $mr" | bc) x nft replace rule ($mr s)"
done
