#!/usr/bin/env bash
# Benchmark: `bits-tls verify postfix` against the real Postfix (target/test-tools, from
# scripts/setup-test-tools.sh) wired as the README says, on a generated list of N participants (default
# 100,000: 112,000 domains). Prints each of 3 rounds and the peak memory. Run as root (postmap -c).
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-100000}"
cargo build --release --quiet
bin="$PWD/target/release/bits-tls"
tools="${BITS_TLS_TEST_TOOLS:-$PWD/target/test-tools}/postfix"
export LD_LIBRARY_PATH="$tools/usr/lib/postfix"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bash scripts/gen-big-list.sh "$n" > "$work/big.csv"
mkdir -p "$work/postfix"
cat > "$work/bits-tls.toml" <<TOML
source = "$work/big.csv"
[[output]]
target = "postfix-policy"
path = "$work/postfix/bits_tls_policy"
TOML
"$bin" --config "$work/bits-tls.toml" sync -q
{
  echo "compatibility_level = 3.6"
  echo "mail_owner = postfix"
  echo "setgid_group = postdrop"
  echo "command_directory = $tools/usr/sbin"
  echo "daemon_directory = $tools/usr/lib/postfix/sbin"
  echo "shlib_directory = $tools/usr/lib/postfix"
  echo "meta_directory = $tools/etc/postfix"
  echo "queue_directory = $work/postfix/queue"
  echo "data_directory = $work/postfix/data"
  sed -n 's/^#   \([a-zA-Z_]* = .*\)$/\1/p' "$work/postfix/bits_tls_policy" | head -5
} > "$work/postfix/main.cf"
printf 'smtp inet n - y - - smtpd\nsmtp unix - - y - - smtp\nrelay unix - - y - - smtp\n' > "$work/postfix/master.cf"
"$tools/usr/sbin/postmap" -c "$work/postfix" "hash:$work/postfix/bits_tls_policy"
for round in 1 2 3; do
  status=0
  /usr/bin/time -f '%e %M' -o "$work/time" "$bin" --config "$work/bits-tls.toml" verify postfix \
    --postfix-config-dir "$work/postfix" --postfix-command-dir "$tools/usr/sbin" > "$work/report" || status=$?
  read -r t m < "$work/time"
  printf 'round %d: verify postfix %s s (%d MB peak), exit %d: %s\n' "$round" "$t" "$((m / 1024))" "$status" "$(tail -1 "$work/report")"
done
