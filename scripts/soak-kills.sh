#!/usr/bin/env bash
# Soak test of the sync transaction: many SIGKILLs at random moments of `bits-tls sync`, each followed by
# a recovery run that must leave outputs, the real postmap's .db, state and history consistent (the same
# checks as tests/transaction.rs, which runs a few in `cargo test`), plus every named fault point.
# Usage: bash scripts/soak-kills.sh [KILLS] [SEED]     (default 200 kills)
set -euo pipefail
cd "$(dirname "$0")/.."
kills="${1:-200}"
seed="${2:-$RANDOM}"
echo "soak: $kills random kills, seed $seed" >&2
BITS_TLS_SOAK_KILLS="$kills" BITS_TLS_SOAK_SEED="$seed" \
  cargo test --test transaction -- --nocapture --test-threads 1 \
  random_kills_are_recovered a_kill_at_every_point_of_the_transaction_is_recovered 2>&1 \
  | grep -E "kills|inconsistencies|test result|panicked|FAILED"
