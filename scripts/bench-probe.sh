#!/usr/bin/env bash
# The probe benchmark: 300 domains sharing 60 MX hosts in the test world (tests/probe.rs, a network
# namespace with nsd, unbound and 60 receivers), release build, default concurrency. Prints the wall
# time and the peak memory of `bits-tls probe`. Needs root and scripts/setup-test-tools.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
for run in 1 2 3; do
  cargo test --release --quiet --test probe -- --ignored --nocapture bench_300 2>&1 | grep '^bench:'
done
