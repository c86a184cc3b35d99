#!/usr/bin/env bash
# Benchmark: `bits-tls fetch --format json` on a generated list of 100,000 participants.
# Target (issue: foundation): under 1 s wall time and under 200 MB peak memory on a 2-core machine.
# Prints the wall time and peak RSS of each of 5 runs, then the best and worst.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/bits-tls
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bash scripts/gen-big-list.sh 100000 > "$work/big.csv"
echo "list: $(wc -c < "$work/big.csv") bytes, 100000 participants"
for i in 1 2 3 4 5; do
  /usr/bin/time -f '%e %M' -o "$work/time.$i" "$bin" fetch --source "$work/big.csv" --format json -q > "$work/out.json"
  read -r secs kb < "$work/time.$i"
  printf 'run %d: %s s, %d MB peak\n' "$i" "$secs" "$((kb / 1024))"
done
cat "$work"/time.* | sort -n | awk 'NR==1{b=$1; bm=$2} {w=$1; wm=$2} END {printf "best %s s, worst %s s (peak %d MB)\n", b, w, (wm>bm?wm:bm)/1024}'
echo "participants out: $(grep -c '"organization"' "$work/out.json")"
