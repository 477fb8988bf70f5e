#!/bin/sh
# Issue 13's views at 100k conntrack entries through the real binaries:
# `show access-list ip`, `show access-list sessions`, a metrics scrape and
# `show version`, each round alternating with `conntrack -L` of the same
# table, and the agent's peak RSS (VmHWM). Needs root; everything happens
# in a throw-away network namespace (BenchmarkKernelViews,
# cmd/aclagent/bench_views_kernel_test.go).
#   ROUNDS=5 scripts/bench-views.sh
set -eu
cd "$(dirname "$0")/.."
exec go test -run '^$' -bench KernelViews -benchtime="${ROUNDS:-5}x" ./cmd/aclagent/
