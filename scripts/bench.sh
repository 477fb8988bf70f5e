#!/bin/sh
# Apply benchmark (issue 3): our netlink Apply against `nft -f` of the same
# ruleset text, for ACLs of 100, 1k and 10k entries, and changing one entry
# of the 10k and 50k ACLs (and a restarted Applier's first apply) against
# the old path (flush and re-add). Needs root; works inside throw-away
# network namespaces only. Figures are medians of COUNT runs (default 5).
# See BENCHMARKS.md.
set -eu
cd "$(dirname "$0")/.."
count=${COUNT:-5}
echo "kernel $(uname -r), nft $(nft --version | awk '{print $2}'), $(nproc) cpus, $(go version | awk '{print $3}')"
go test -run '^$' -bench 'BenchmarkApply|BenchmarkChangeOneEntry|BenchmarkRestart|BenchmarkDriftCheck' -benchtime "${count}x" ./internal/nft/ |
	awk '/^Benchmark/ {
		name = $1; sub(/-[0-9]+$/, "", name); line = name
		for (i = 3; i < NF; i += 2) line = line sprintf("  %s=%s", $(i+1), $i)
		print line
	}
	/^(ok|FAIL)/ { print }'
