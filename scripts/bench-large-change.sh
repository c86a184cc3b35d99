#!/usr/bin/env bash
# A large change into existing files: sync a 300-participant list, then one of N (default 100000)
# participants with --force -q, into three outputs; prints time and peak memory of each size. The line
# diff of a change this large is summarised, so the time grows linearly with the list.
# Usage: bash scripts/bench-large-change.sh [N…]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/bits-tls"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
sizes=("$@")
[ "${#sizes[@]}" -gt 0 ] || sizes=(20000 100000)
bash "$root/scripts/gen-big-list.sh" 300 > "$work/small.csv"
for n in "${sizes[@]}"; do
  bash "$root/scripts/gen-big-list.sh" "$n" > "$work/big.csv"
  rm -rf "$work/w" && mkdir "$work/w" && cd "$work/w"
  printf '[[output]]\ntarget = "postfix-policy"\npath = "policy"\n[[output]]\ntarget = "exim-domains"\npath = "exim"\n[[output]]\ntarget = "exchange-online"\npath = "exo.ps1"\n' > bits-tls.toml
  "$bin" sync -q --source "$work/small.csv"
  /usr/bin/time -f "300 -> $n participants: %e s, %M KB peak" "$bin" sync -q --force --source "$work/big.csv"
done
