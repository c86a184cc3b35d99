#!/usr/bin/env bash
# Benchmarks at scale, as ratios to a bare Python csv.reader pass over the same list (README: Performance).
#   bash scripts/bench.sh            the goals table: 100,000 participants, median of 5 runs, syscall counts
#   bash scripts/bench.sh --quick    10,000 participants, 3 runs (a smoke run)
#   bash scripts/bench.sh growth     cost per participant at 10k, 30k, 100k and 300k (scripts/bench.py growth)
# Extra arguments go to scripts/bench.py; --strict makes a missed goal exit 1.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
case "${1:-}" in
  --quick) shift; exec python3 scripts/bench.py table --participants 10000 --runs 3 "$@" ;;
  growth) shift; exec python3 scripts/bench.py growth "$@" ;;
  *) exec python3 scripts/bench.py table "$@" ;;
esac
