#!/usr/bin/env bash
# Benchmark: `bits-tls sync` with all six targets on a generated list of 100,000 participants.
# Targets (issue: sync engine): first sync under 2 s, a re-run with no change under 1 s, on 2 cores.
# Prints each of 3 rounds (a fresh directory each) and the peak memory.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin="$PWD/target/release/bits-tls"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bash scripts/gen-big-list.sh 100000 > "$work/big.csv"
for round in 1 2 3; do
  dir="$work/round$round"
  mkdir -p "$dir/out"
  cat > "$dir/bits-tls.toml" <<TOML
source = "$work/big.csv"
[exchange_online]
max_domains_per_connector = 1000
[[output]]
target = "postfix-policy"
path = "out/policy"
[[output]]
target = "postfix-senders"
path = "out/senders"
[[output]]
target = "exim-domains"
path = "out/exim-domains"
[[output]]
target = "exim-config"
path = "out/exim-config"
[[output]]
target = "exchange"
path = "out/exchange.ps1"
[[output]]
target = "exchange-online"
path = "out/exchange-online.ps1"
TOML
  (cd "$dir" && /usr/bin/time -f '%e %M' -o first.time "$bin" sync -q)
  (cd "$dir" && /usr/bin/time -f '%e %M' -o rerun.time "$bin" sync -q)
  read -r f fm < "$dir/first.time"
  read -r r rm < "$dir/rerun.time"
  printf 'round %d: first sync %s s (%d MB peak), re-run %s s (%d MB peak)\n' "$round" "$f" "$((fm / 1024))" "$r" "$((rm / 1024))"
done
du -sh "$work/round1/out" "$work/round1/bits-tls.state.json" | sed 's/^/size: /'
