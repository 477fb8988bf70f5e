#!/bin/sh
# Cost of the exact-limits mechanism (issue 8): new TCP connections per
# second through one limited entry with no firewall, with a bare nft
# connlimit rule (no reservations), with our compiled entry for a key
# without old sessions and for a key held at depth 60; the variants
# alternate, one process per run (scripts/bench-alternate.sh). Then what
# one `connlimit T` entry compiles to (sets, estimated kernel memory,
# rules). Needs root; works in throw-away network namespaces only. See
# BENCHMARKS.md.
set -eu
cd "$(dirname "$0")/.."
echo "kernel $(uname -r), $(nproc) cpus, $(go version | awk '{print $3}'), ${COUNT:-7} rounds of ${CONNS:-3000} connections"
ROUNDS=${COUNT:-7} BENCHTIME="${CONNS:-3000}x" scripts/bench-alternate.sh BenchmarkKernelConnRate none bare-connlimit compiled compiled-old60 |
	awk -v bases="none bare-connlimit" -f scripts/paired.awk
echo
go test -run '^$' -bench 'BenchmarkEntryCost' -benchtime 1x ./internal/nft/ |
	awk '/^BenchmarkEntryCost\// {
		t = $1; sub(/^BenchmarkEntryCost\//, "", t); sub(/-[0-9]+$/, "", t)
		line = sprintf("connlimit %-6s", t)
		for (i = 3; i < NF; i++) if ($(i+1) ~ /^(rules|sets|set-KiB)$/) line = line sprintf("  %s=%s", $(i+1), $i)
		print line
	}'
