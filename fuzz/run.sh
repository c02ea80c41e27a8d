#!/usr/bin/env bash
# Runs one cargo-fuzz target for a bounded time, from a clean clone:
#
#   fuzz/run.sh TARGET SECONDS [extra libFuzzer flags...]
#   fuzz/run.sh all SECONDS            # every target in turn, SECONDS each
#
# Installs cargo-fuzz if missing. cargo-fuzz needs nightly flags (sanitizers): the
# nightly toolchain is used when rustup has one, otherwise stable with RUSTC_BOOTSTRAP=1
# (set OCM_FUZZ_TOOLCHAIN=stable to force that). Core is `#![forbid(unsafe_code)]` and
# the targets check properties, not memory errors, so the default is no sanitizer (about
# 3x the executions per second); OCM_FUZZ_SANITIZER=address turns AddressSanitizer on,
# which also makes -malloc_limit_mb effective (libFuzzer's malloc hooks). New inputs go to fuzz/work/TARGET
# (not committed); the committed corpus fuzz/corpus/TARGET and fuzz/regressions/TARGET
# are read as seeds. A crash is saved in fuzz/artifacts/TARGET/ and the script exits
# non-zero: copy the file to fuzz/regressions/TARGET/ so `cargo test` replays it.
# To fold what a run found back into the committed corpus (only inputs that add
# coverage): OCM_FUZZ_MERGE=1 fuzz/run.sh TARGET 0
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(tcrp_stream room_datagram relay_datagram server_ops relay_ops)
usage="usage: fuzz/run.sh TARGET|all SECONDS [libFuzzer flags...]; targets: ${targets[*]}"
target=${1:?$usage}
seconds=${2:?$usage}
shift 2

if [ "$target" = all ]; then
  for t in "${targets[@]}"; do "$0" "$t" "$seconds" "$@"; done
  exit 0
fi
case " ${targets[*]} " in *" $target "*) ;; *) echo "$usage" >&2; exit 2 ;; esac

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

sanitizer=${OCM_FUZZ_SANITIZER:-none}
toolchain=()
if [ "${OCM_FUZZ_TOOLCHAIN:-}" != stable ] && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  export RUSTC_BOOTSTRAP=1
fi

# Datagrams are capped at 4096 bytes: 4200 reaches just past the cap. A TCRP stream gets
# room for a frame at the 4096-byte limit and more. Operation sequences stay at 1024
# bytes (a hundred or so inputs): the pools make long messages from one byte, every
# state is a few inputs away, and each input costs an invariant check, so shorter
# sequences mean several times more executions.
case "$target" in
  room_datagram | relay_datagram) max_len=4200 ;;
  tcrp_stream) max_len=9000 ;;
  *) max_len=1024 ;;
esac

work=fuzz/work/$target
mkdir -p "$work" "fuzz/corpus/$target" "fuzz/artifacts/$target"
seeds=("fuzz/corpus/$target")
[ -d "fuzz/regressions/$target" ] && seeds+=("fuzz/regressions/$target")

if [ "${OCM_FUZZ_MERGE:-}" = 1 ]; then
  exec cargo "${toolchain[@]}" fuzz run -s "$sanitizer" "$target" "fuzz/corpus/$target" "$work" -- \
    -set_cover_merge=1 -max_len="$max_len" "$@"
fi

# -malloc_limit_mb (with ASan): any single allocation above 64 MiB is a crash (decoders
# must never allocate from an unchecked size); -timeout: an input over 10 s is a hang.
exec cargo "${toolchain[@]}" fuzz run -s "$sanitizer" "$target" "$work" "${seeds[@]}" -- \
  -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
  -malloc_limit_mb=64 -print_final_stats=1 "$@"
