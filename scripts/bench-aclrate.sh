#!/bin/sh
# New TCP connections per second through a 1000-entry ACL whose last entry
# admits them (issue 13): no firewall, connection tracking alone, our table
# with the client's entry only, our compiled ACL with classification
# maps (the default) and as one rule per entry, and the same rules in
# iptables (legacy and nf_tables), each with and without a connlimit on the
# last entry; the variants alternate within the run (-count). Prints the
# median conns/s of each, and its ratios to the others as the median of
# the ratios within each round (paired: the machine's drift over the run
# cancels). Needs root; works in throw-away network
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
		for (i = 3; i < NF; i++) if ($(i+1) == "conns/s") { n[v]++; r[v, n[v]] = $i }
	}
	function median(s,   a, n, i, j, t) {
		n = split(s, a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	# The median of the ratios of the runs of one round: variants measured
	# seconds apart, so that what drifts over the run (the machine) cancels.
	function paired(v, w,   i, s) {
		s = ""
		for (i = 1; i <= n[v] && i <= n[w]; i++) s = s " " r[v, i] / r[w, i]
		return median(s)
	}
	function all(v,   i, s) {
		s = ""
		for (i = 1; i <= n[v]; i++) s = s " " r[v, i]
		return s
	}
	END {
		k = split("none conntrack acl1 maps maps-connlimit rules rules-connlimit iptables iptables-connlimit iptables-nft iptables-nft-connlimit", order, " ")
		printf "%-24s %10s %9s %9s %9s %13s %17s   (paired: medians of the rounds'"'"' ratios)\n", "variant", "conns/s", "vs none", "vs ct", "vs acl1", "vs iptables", "vs iptables-nft"
		for (j = 1; j <= k; j++) {
			v = order[j]; c = v ~ /-connlimit$/ ? "-connlimit" : ""
			printf "%-24s %10.0f %9.2f %9.2f %9.2f %13.2f %17.2f\n", v, median(all(v)), paired(v, "none"), paired(v, "conntrack"), paired(v, "acl1"), paired(v, "iptables" c), paired(v, "iptables-nft" c)
		}
	}'
