#!/bin/sh
# New TCP connections per second through a 1000-entry ACL whose last entry
# admits them (issue 13): no firewall, our compiled ACL with classification
# maps (the default) and as one rule per entry, and the same rules in
# iptables (legacy and nf_tables), each with and without a connlimit on the
# last entry; the variants alternate within the run (-count). Prints the
# medians and their ratios. Needs root; works in throw-away network
# namespaces only. See BENCHMARKS.md.
set -eu
cd "$(dirname "$0")/.."
command -v iptables-legacy-restore >/dev/null || { echo "needs iptables (apt-get install iptables)" >&2; exit 1; }
count=${COUNT:-7}
conns=${CONNS:-3000}
echo "kernel $(uname -r), $(nproc) cpus, $(go version | awk '{print $3}'), $count alternating runs of $conns connections"
go test -run '^$' -bench 'BenchmarkKernelACLRate' -benchtime "${conns}x" -count "$count" ./internal/nft/ |
	awk '/^BenchmarkKernelACLRate\// {
		v = $1; sub(/^BenchmarkKernelACLRate\//, "", v); sub(/-[0-9]+$/, "", v)
		for (i = 3; i < NF; i++) if ($(i+1) == "conns/s") r[v] = r[v] " " $i
	}
	function median(s,   a, n, i, j, t) {
		n = split(s, a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	END {
		n = split("none maps maps-connlimit rules rules-connlimit iptables iptables-connlimit iptables-nft iptables-nft-connlimit", order, " ")
		for (k = 1; k <= n; k++) m[order[k]] = median(r[order[k]])
		printf "%-24s %10s %9s %13s %17s\n", "variant", "conns/s", "vs none", "vs iptables", "vs iptables-nft"
		for (k = 1; k <= n; k++) {
			v = order[k]; c = v ~ /-connlimit$/ ? "-connlimit" : ""
			printf "%-24s %10.0f %9.2f %13.2f %17.2f\n", v, m[v], m[v] / m["none"], m[v] / m["iptables" c], m[v] / m["iptables-nft" c]
		}
	}'
