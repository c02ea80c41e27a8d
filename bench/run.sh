#!/usr/bin/env bash
# Reproduces every figure in docs/BENCHMARKS.md: the core benchmarks (criterion), heap
# bytes per member, and the loopback load test against the raw-UDP baseline.
# Usage: bench/run.sh [quick]   ("quick": shorter runs, for a smoke test)
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"

echo "== machine"
uname -srm
nproc
grep -m1 'model name' /proc/cpuinfo || true

cargo build --release -p ocm -p ocm-bench

if [ "${1:-}" = quick ]; then
    criterion=(--warm-up-time 1 --measurement-time 2)
    messages=20000
else
    criterion=()
    messages=200000
fi

echo "== core (criterion)"
cargo bench -p ocm-bench --bench core -- "${criterion[@]}"

echo "== memory"
cargo bench -p ocm-bench --bench memory

echo "== loopback load against the raw-UDP baseline"
"$target/release/ocm-load" --ocm "$target/release/ocm" --members 2,8,64 --messages "$messages"

echo "== cluster mode: a 64-member room over 1, 2 and 3 nodes against one node, and Redis's CPU"
if command -v redis-server >/dev/null 2>&1; then
    "$target/release/ocm-load" --ocm "$target/release/ocm" --members 64 --messages "$((messages / 10))" --cluster-nodes 1,2,3
else
    echo "skipped: no redis-server (Debian: apt-get install -y redis-server)"
fi
