#!/usr/bin/env bash
# Benchmarks at scale, as ratios to a bare Python csv.reader pass over the same list, measured in the
# same run and interleaved with the tool's runs (README: Performance). Wall time and peak memory come
# from /usr/bin/time; stdout goes to a file; each figure is the median of the runs.
#   bash scripts/bench.sh            the goals table: 100,000 participants, median of 5 runs, syscall counts
#   bash scripts/bench.sh --quick    10,000 participants, 3 runs (a smoke run)
#   bash scripts/bench.sh growth     cost per participant at 10k, 30k, 100k and 300k (= scripts/bench-growth.sh)
# Further arguments go to `scripts/bench.py table` (e.g. --cases fetch,check --runs 7); BENCH_STRICT=1
# makes a missed goal exit 1. The part scripts: bench-fetch.sh, bench-sync.sh, bench-large-change.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# BENCH_BIN=path measures that binary instead of a fresh release build (CI's smoke run uses the test
# build's debug binary: it proves the scripts, not the figures).
bin=(--bin "${BENCH_BIN:-target/release/bits-tls}")
[ -n "${BENCH_BIN:-}" ] || cargo build --release --locked --quiet
strict=()
[ "${BENCH_STRICT:-}" = 1 ] && strict=(--strict)
case "${1:-}" in
  --quick) shift; exec python3 scripts/bench.py "${bin[@]}" "${strict[@]}" table --participants 10000 --runs 3 "$@" ;;
  growth) shift; exec python3 scripts/bench.py "${bin[@]}" "${strict[@]}" growth "$@" ;;
  *) exec python3 scripts/bench.py "${bin[@]}" "${strict[@]}" table "$@" ;;
esac
