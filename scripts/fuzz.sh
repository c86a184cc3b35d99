#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer, via cargo-fuzz) of the CSV reader, the page reader and render-all.
# Usage: bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET…]   (default 60 s; targets csv page render_all)
#
# The bodies are in fuzz/bodies.rs; the same bodies run briefly on the stable toolchain in the test suite
# (tests/fuzz_smoke.rs), which is all CI runs. cargo-fuzz needs nightly features: a nightly toolchain is
# used when rustup has one, else the stable one with RUSTC_BOOTSTRAP=1. New inputs go to
# target/fuzz-corpus/TARGET (fuzz/corpus/TARGET holds the seeds); crashes to fuzz/artifacts/TARGET.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
secs="${1:-60}"
shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(csv page render_all)

command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  fuzz=(cargo +nightly fuzz)
else
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
fi

cd "$root/fuzz"
for t in "${targets[@]}"; do
  out="$root/target/fuzz-corpus/$t"
  mkdir -p "$out"
  echo "== fuzzing $t for $secs s" >&2
  "${fuzz[@]}" run "$t" "$out" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 2>&1 \
    | tee "$root/target/fuzz-$t.log" | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|==[0-9]+==|SUMMARY|Done )" || true
  if grep -q "SUMMARY\|panicked" "$root/target/fuzz-$t.log"; then
    echo "fuzz: $t found a crash; see fuzz/artifacts/$t and target/fuzz-$t.log" >&2
    exit 1
  fi
done
