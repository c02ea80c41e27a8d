#!/usr/bin/env bash
# Reproduces every figure in docs/BENCHMARKS.md: the core benchmarks (criterion), heap
# bytes per member, the loopback load test (fan-out, junk, handshakes) against the
# plain-socket baselines, what scraping /metrics costs, and cluster mode over 1-3 nodes
# (if redis-server is installed),
# all in one run.
# Usage: bench/run.sh [quick|profile]
#   (none)   every figure, ocm-load over 3 runs (about 8 minutes on 2 cores)
#   quick    shorter runs, one of each, for a smoke test (about 2 minutes)
#   profile  ocm-load only, every server under callgrind: instructions and system calls
#            per delivery, dropped datagram and handshake (about 3 minutes; see
#            docs/BENCHMARKS.md "Profiling"); dumps in target/profile
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
start=$SECONDS

echo "== machine"
uname -srm
nproc
grep -m1 'model name' /proc/cpuinfo || true
uptime

cargo build --release -p ocm -p ocm-bench

load=("$target/release/ocm-load" --ocm "$target/release/ocm" --members 2,8,64)
case "${1:-}" in
    quick)
        criterion=(--warm-up-time 1 --measurement-time 2)
        load+=(--runs 1 --deliveries 20000 --junk 20000 --handshakes 100)
        cluster_deliveries=20000
        scrape=(--runs 1 --deliveries 100000)
        ;;
    profile)
        rm -rf "$target/profile/callgrind"
        "${load[@]}" --runs 1 --deliveries 20000 --junk 20000 --handshakes 100 \
            --profile callgrind --profile-dir "$target/profile/callgrind"
        echo "== took $((SECONDS - start)) s"
        exit
        ;;
    "")
        criterion=()
        load+=(--runs 3 --deliveries 200000 --junk 300000 --handshakes 5000)
        cluster_deliveries=200000
        scrape=(--runs 3 --deliveries 400000)
        ;;
    *)
        echo "usage: bench/run.sh [quick|profile]" >&2
        exit 2
        ;;
esac

echo "== core (criterion)"
cargo bench -p ocm-bench --bench core -- "${criterion[@]}"

echo "== memory"
cargo bench -p ocm-bench --bench memory

echo "== loopback load against the plain-socket baselines"
"${load[@]}"

echo "== scrape cost: server CPU per delivery with a scraper on /metrics 10 times a second, against none"
"$target/release/ocm-load" --ocm "$target/release/ocm" --members 8,64 --scrape 10 "${scrape[@]}"

echo "== cluster mode: a 64-member room over 1, 2 and 3 nodes against one node, and Redis's CPU"
if command -v redis-server >/dev/null 2>&1; then
    "$target/release/ocm-load" --ocm "$target/release/ocm" --members 64 \
        --deliveries "$cluster_deliveries" --cluster-nodes 1,2,3
else
    echo "skipped: no redis-server (Debian: apt-get install -y redis-server)"
fi

echo "== took $((SECONDS - start)) s"
