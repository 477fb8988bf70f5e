#!/bin/sh
# Runs the variants of one benchmark of ./internal/nft/ round after round,
# one process per run, so that they truly alternate: `go test -count N`
# runs each sub-benchmark N times in a row, minutes apart from the next
# variant, and the machine's drift over those minutes was larger than
# what a firewall costs. Prints one line per run: round, variant, then
# each metric of the run as NAME=VALUE (conns/s, cpu-µs/conn).
#
#   scripts/bench-alternate.sh BENCHMARK VARIANT...
#
# ROUNDS (default 7), BENCHTIME (default 3000x), SETTLE (seconds between
# runs, default 2: the namespaces of the run before are torn down in the
# background). Needs root; throw-away network namespaces only.
set -eu
cd "$(dirname "$0")/.."
bench=$1
shift
rounds=${ROUNDS:-7}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/nft.test" ./internal/nft/
for r in $(seq "$rounds"); do
	for v in "$@"; do
		sleep "${SETTLE:-2}"
		"$tmp/nft.test" -test.run '^$' -test.bench "^$bench/^$v\$" -test.benchtime "${BENCHTIME:-3000x}" |
			awk -v r="$r" -v v="$v" '$1 ~ /^Benchmark/ && NF > 3 {
				s = r " " v
				for (i = 3; i < NF; i++) if ($(i+1) ~ /\// && $(i+1) != "ns/op") s = s " " $(i+1) "=" $i
				print s
			}'
	done
done
