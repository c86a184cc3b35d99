#!/usr/bin/env bash
# Supply-chain checks on the crates that ship in the binary (deny.toml): licences, banned crates
# (OpenSSL), and sources (crates.io only). Offline but for crates.io: `cargo fetch` downloads the
# crates cargo metadata needs for every platform. Advisories are NOT checked here: the RustSec database
# lives on GitHub, which CI cannot reach; run `cargo deny check advisories` on a machine that can.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fetch --locked --quiet
cargo deny --offline check licenses bans sources
echo "supply-chain: licences, bans and sources checked; advisories not checked (needs GitHub)" >&2
