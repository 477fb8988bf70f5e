#!/bin/sh
# Prints a startup-config with one extended ACL of N entries (default
# 65535, seq 1..N) applied inbound on eth1: permit tcp from one host each to
# a port, every hundredth entry with connlimit 3 (as internal/nft's
# benchConfig). Used by scripts/bench-big.sh.
set -eu
n=${1:-65535}
awk -v n="$n" 'BEGIN {
	print "ip access-list extended big"
	for (i = 1; i <= n; i++) {
		line = sprintf(" seq %d permit tcp host 10.%d.%d.%d any eq %d", i, int(i/65536), int(i/256)%256, i%256, 1000 + i%20000)
		if (i % 100 == 0) line = line " connlimit 3"
		print line
	}
	print "interface eth1"
	print " ip access-group big in"
	print "end"
}'
