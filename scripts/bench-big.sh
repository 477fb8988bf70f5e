#!/bin/sh
# The 65535-entry ACL through the real binaries (issues 12 and 13): agent
# start with the generated startup-config, restart after kill -9 (table
# left in the kernel), a one-line change through slxsh (`no seq 70` and
# `seq 70 ...` in one block), `show version`. Needs root; works in a
# throw-away network namespace. Prints seconds per step.
#   N=65535 scripts/bench-big.sh
#   BIN=/dir/with/aclagent+slxsh scripts/bench-big.sh   (other binaries)
set -eu
cd "$(dirname "$0")/.."
n=${N:-65535}
tmp=$(mktemp -d)
ns=slxbig$$
cleanup() {
	[ -f "$tmp/pid" ] && kill -9 "$(cat "$tmp/pid")" 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
if [ -n "${BIN:-}" ]; then # binaries built elsewhere (another commit, for comparison)
	cp "$BIN/aclagent" "$BIN/slxsh" "$tmp/"
else
	go build -o "$tmp/aclagent" ./cmd/aclagent
	go build -o "$tmp/slxsh" ./cmd/slxsh
fi
chmod 755 "$tmp"
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add eth1 type veth peer name eth1p
ip -n "$ns" link set eth1 up
scripts/gen-acl.sh "$n" >"$tmp/startup-config"
now() { date +%s.%N; }
# start: runs the agent and waits for its "ready" log line.
start() {
	: >"$tmp/log"
	t0=$(now)
	ip netns exec "$ns" "$tmp/aclagent" --socket "$tmp/a.sock" --config "$tmp/startup-config" \
		--mgmt-interface lo --admin-group root >"$tmp/log" 2>&1 &
	echo $! >"$tmp/pid"
	until grep -q 'msg=ready' "$tmp/log"; do
		kill -0 "$(cat "$tmp/pid")" 2>/dev/null || { cat "$tmp/log"; exit 1; }
		sleep 0.05
	done
	echo "$1 $(echo "$(now) - $t0" | bc) s"
}
slx() { "$tmp/slxsh" --socket "$tmp/a.sock" "$@"; }
timed() {
	label=$1; shift
	t0=$(now)
	"$@" >"$tmp/out" 2>&1 || { cat "$tmp/out"; exit 1; }
	echo "$label $(echo "$(now) - $t0" | bc) s"
}
# change SEQ PORT: replaces entry SEQ in one block. The agent renews (counts
# afresh) every limit after a changed entry (nft.Renewals): an early entry
# renews most of them, a late one few.
change() {
	printf 'configure terminal\nip access-list extended big\nno seq %s\nseq %s permit tcp host 10.200.%d.%d any eq %s\nend\n' "$1" "$1" $(($1 / 256 % 256)) $(($1 % 256)) "$2" | slx -f /dev/stdin
}
echo "entries $n"
start start
ip netns exec "$ns" nft list chain inet slxsh ip_big_in | grep -c comment | sed 's/^/rules in ip_big_in: /'
timed "show-version" slx -c 'show version'
timed "change-seq-70" change 70 2070
timed "change-seq-70-again" change 70 1070
timed "change-seq-$((n - 5))" change $((n - 5)) 2070
kill -9 "$(cat "$tmp/pid")"
wait "$(cat "$tmp/pid")" 2>/dev/null || true
start restart-after-kill-9
timed "change-seq-70-after-restart" change 70 2070
timed "change-seq-$((n - 5))-after-restart" change $((n - 5)) 1070
timed "show-version" slx -c 'show version'
ip netns exec "$ns" nft list chain inet slxsh ip_big_in | grep -c 'seq=70[" ]' | sed 's/^/rules of seq 70: /'
