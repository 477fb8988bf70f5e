#!/bin/sh
# New TCP connections per second through a 1000-entry ACL whose last entry
# admits them (issue 13), and the CPU each costs: no firewall, connection
# tracking alone, our table with the client's entry only, our compiled ACL
# with classification maps (the default) and as one rule per entry, each
# with and without the agent's session index following conntrack events
# (what a running agent adds), and the same rules in iptables (legacy and
# nf_tables), with and without a connlimit on the last entry. The
# variants alternate, one process per run (scripts/bench-alternate.sh);
# ratios are medians of each round's own ratios (scripts/paired.awk).
# Needs root; works in throw-away network namespaces only. See
# BENCHMARKS.md.
set -eu
cd "$(dirname "$0")/.."
command -v iptables-legacy-restore >/dev/null || { echo "needs iptables (apt-get install iptables)" >&2; exit 1; }
variants=${VARIANTS:-none conntrack conntrack-connlimit acl1 maps maps-index maps-connlimit maps-connlimit-index rules rules-connlimit iptables iptables-connlimit iptables-nft iptables-nft-connlimit}
echo "kernel $(uname -r), $(nproc) cpus, $(go version | awk '{print $3}'), ${ROUNDS:-7} rounds of ${CONNS:-20000} connections"
ROUNDS=${ROUNDS:-7} BENCHTIME="${CONNS:-20000}x" scripts/bench-alternate.sh BenchmarkKernelACLRate $variants |
	awk -v bases="${BASES:-none conntrack iptables iptables-nft}" -f scripts/paired.awk
