# Summarises the runs of scripts/bench-alternate.sh: per variant the
# median of each metric, and for each baseline the median over rounds of
# the round's own ratio (variant measured seconds apart from its
# baseline, so the machine's drift cancels), with the quartiles of those
# ratios. For conns/s the ratio is variant / baseline; for cpu-µs/conn it
# is baseline / variant (the rate a CPU-bound host could reach).
#
#   awk -v bases="none conntrack" -f scripts/paired.awk RUNS
#
# A baseline is taken with the variant's -connlimit suffix where such a
# variant ran (iptables-connlimit for maps-connlimit).
{
	r = $1; v = $2
	if (!(v in seen)) { seen[v] = 1; order[++nv] = v }
	if (r > rounds) rounds = r
	for (i = 3; i <= NF; i++) {
		split($i, kv, "=")
		if (!(kv[1] in mseen)) { mseen[kv[1]] = 1; metrics[++nm] = kv[1] }
		val[v, r, kv[1]] = kv[2]
	}
}
function sorted(s, a,   n, i, j, t) {
	n = split(s, a, " ")
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	return n
}
function median(s,   a, n) {
	n = sorted(s, a)
	if (n == 0) return 0
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function quart(s, q,   a, n) {
	n = sorted(s, a)
	return n ? a[int(q * (n - 1) + 0.5) + 1] : 0
}
function baseOf(b, v) {
	return v ~ /-connlimit/ && ((b "-connlimit") in seen) ? b "-connlimit" : b
}
END {
	nb = split(bases, bl, " ")
	for (m = 1; m <= nm; m++) {
		k = metrics[m]
		printf "\n%-26s %12s", "variant", k
		for (j = 1; j <= nb; j++) printf " %22s", "vs " bl[j]
		printf "\n"
		for (x = 1; x <= nv; x++) {
			v = order[x]; all = ""
			for (r = 1; r <= rounds; r++) if ((v, r, k) in val) all = all " " val[v, r, k]
			printf "%-26s %12.1f", v, median(all)
			for (j = 1; j <= nb; j++) {
				b = baseOf(bl[j], v); s = ""
				for (r = 1; r <= rounds; r++) {
					if (!((v, r, k) in val) || !((b, r, k) in val) || val[v, r, k] + 0 == 0 || val[b, r, k] + 0 == 0) continue
					s = s " " (k ~ /^cpu/ ? val[b, r, k] / val[v, r, k] : val[v, r, k] / val[b, r, k])
				}
				if (s == "") printf " %22s", "-"
				else printf " %8.3f (%.2f-%.2f)", median(s), quart(s, 0.25), quart(s, 0.75)
			}
			printf "\n"
		}
	}
	printf "\nconns/s: variant / baseline; cpu-µs/conn: baseline / variant (the rate if CPU decides it).\nMedians of each round's own ratio, quartiles in brackets; %d rounds.\n", rounds
}
