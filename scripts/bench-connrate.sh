#!/bin/sh
# Cost of the exact-limits mechanism (issue 8): new TCP connections per
# second through one limited entry with no firewall, with a bare nft
# connlimit rule (no reservations), with our compiled entry for a key
# without old sessions and for a key held at depth 60; the variants
# alternate within the run (-count). Then what one `connlimit T` entry
# compiles to (sets, estimated kernel memory, rules). Needs root; works in
# throw-away network namespaces only. See BENCHMARKS.md.
set -eu
cd "$(dirname "$0")/.."
count=${COUNT:-7}
conns=${CONNS:-3000}
echo "kernel $(uname -r), $(nproc) cpus, $(go version | awk '{print $3}'), $count alternating runs of $conns connections"
go test -run '^$' -bench 'BenchmarkKernelConnRate' -benchtime "${conns}x" -count "$count" ./internal/nft/ |
	awk '/^BenchmarkKernelConnRate\// {
		v = $1; sub(/^BenchmarkKernelConnRate\//, "", v); sub(/-[0-9]+$/, "", v)
		for (i = 3; i < NF; i++) if ($(i+1) == "conns/s") r[v] = r[v] " " $i
	}
	function median(s,   a, n, i, j, t) {
		n = split(s, a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	END {
		split("none bare-connlimit compiled compiled-old60", order, " ")
		for (k = 1; k <= 4; k++) m[order[k]] = median(r[order[k]])
		printf "%-16s %10s %12s %14s\n", "variant", "conns/s", "vs none", "vs bare rule"
		for (k = 1; k <= 4; k++) {
			v = order[k]
			printf "%-16s %10.0f %12.2f %14.2f\n", v, m[v], m[v] / m["none"], m[v] / m["bare-connlimit"]
		}
	}'
echo
go test -run '^$' -bench 'BenchmarkEntryCost' -benchtime 1x ./internal/nft/ |
	awk '/^BenchmarkEntryCost\// {
		t = $1; sub(/^BenchmarkEntryCost\//, "", t); sub(/-[0-9]+$/, "", t)
		line = sprintf("connlimit %-6s", t)
		for (i = 3; i < NF; i++) if ($(i+1) ~ /^(rules|sets|set-KiB)$/) line = line sprintf("  %s=%s", $(i+1), $i)
		print line
	}'
