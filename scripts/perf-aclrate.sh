#!/bin/sh
# Where a new connection's CPU goes, by variant of BenchmarkKernelACLRate
# (issue 13): each variant runs alone under `perf record -a` for CONNS
# connections, and the kernel's samples in the packet path of the rules
# (nft_do_chain and what it evaluates, pipapo lookups, x_tables) and of
# connection tracking are summed as shares of the busy CPU. Throughput
# alone cannot resolve what a firewall costs here (runs of the same
# variant differ by more); the samples can. Table loads and teardown fall
# outside the summed symbols. Needs root, perf and iptables; throw-away
# namespaces only. See BENCHMARKS.md.
set -eu
cd "$(dirname "$0")/.."
command -v perf >/dev/null || { echo "needs perf (apt-get install linux-perf)" >&2; exit 1; }
command -v iptables-legacy-restore >/dev/null || { echo "needs iptables (apt-get install iptables)" >&2; exit 1; }
conns=${CONNS:-20000}
variants=${VARIANTS:-none conntrack acl1 maps maps-connlimit rules rules-connlimit iptables iptables-connlimit iptables-nft iptables-nft-connlimit}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/nft.test" ./internal/nft/
echo "kernel $(uname -r), $(nproc) cpus, $conns connections per variant"
printf "%-24s %9s %7s %8s %10s\n" variant conns/s busy rules conntrack
for v in $variants; do
	rate=$(perf record -q -a -o "$tmp/perf.data" -- "$tmp/nft.test" -test.run '^$' \
		-test.bench "BenchmarkKernelACLRate/^$v\$" -test.benchtime "${conns}x" 2>/dev/null |
		awk '/conns\/s/ { for (i = 2; i < NF; i++) if ($(i+1) == "conns/s") print $i }')
	perf report -q -i "$tmp/perf.data" --no-children --sort sym 2>/dev/null |
		awk -v v="$v" -v rate="$rate" '
		/%/ {
			p = $1; sub(/%/, "", p); s = $NF; all += p
			if (s ~ /^(pv_native_safe_halt|default_idle|cpuidle_|acpi_idle|poll_idle|intel_idle)/) { idle += p; next }
			if (s ~ /^(nft_do_chain|nf_hook_slow|nft_[a-z0-9_]*_eval|nft_meta_|nft_payload_|nft_set_do_lookup|nft_pipapo_avx2_lookup|nft_pipapo_avx2_refill|nft_pipapo_lookup|pipapo_get|pipapo_refill|nft_rhash_lookup|nft_hash_lookup|nft_rbtree_lookup|nf_conncount_|__nf_conncount_|count_tree|find_or_evict|nft_reject_|ipt_do_table|xt_|tcp_mt|conntrack_mt|connlimit_mt|ip_packet_match)/) rules += p
			else if (s ~ /^(nf_conntrack_in|nf_conntrack_tcp_packet|nf_conntrack_handle_packet|__nf_conntrack_find_get|__nf_conntrack_confirm|nf_confirm|nf_ct_get_tuple|__nf_conntrack_alloc|nf_conntrack_alloc|nf_conntrack_free|init_conntrack|hash_conntrack|nf_ct_deliver_cached_events|ipv4_conntrack_|tcp_in_window|nf_ct_refresh|__nf_ct_refresh|nf_ct_kill|nf_ct_delete|nf_ct_destroy|destroy_conntrack|nf_conntrack_destroy|nf_ct_ext_|nf_ct_acct|nf_ct_seq|nf_ct_l4proto|nf_ct_resolve_clash|nf_ct_tcp_|nf_ct_timeout|nf_defrag_|ipv4_confirm|ipv4_in|ipv4_local_out)/) ct += p
		}
		END {
			busy = all - idle
			printf "%-24s %9.0f %6.1f%% %7.2f%% %9.2f%%\n", v, rate, busy, 100 * rules / busy, 100 * ct / busy
		}'
done
echo "busy: of all CPUs' samples; rules and conntrack: shares of the busy samples"
