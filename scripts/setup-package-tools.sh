#!/usr/bin/env bash
# Installs what scripts/package.sh and tests/package.sh need: the musl target and Debian's musl-tools
# (the static binary), rpm (rpmbuild), lintian, rpmlint, file, man-db, and two cargo tools compiled from
# crates.io: cargo-cyclonedx (the SBOM) and cargo-deny (licences, bans, sources). Run as root; called by
# scripts/setup-test-tools.sh. Skips what is there already, so a second run costs seconds; a first run
# compiles the two cargo tools (about 5 minutes each on 2 cores).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

packages=(musl-tools rpm rpmlint lintian file man-db xz-utils)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The musl standard library comes from rustup. Where rustup cannot download it, scripts/package.sh
# falls back to a static glibc build and says so.
if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
  rustup target add x86_64-unknown-linux-musl ||
    echo "setup-package-tools: the musl target could not be installed; package.sh will link glibc statically" >&2
fi

# Pinned versions, installed once (cargo's bin directory is kept between runs on the same machine).
install_tool() { # crate version command
  if "$3" --version 2>/dev/null | grep -q " $2\$"; then
    return
  fi
  cargo install --locked --quiet "$1@$2"
}
install_tool cargo-cyclonedx 0.5.9 cargo-cyclonedx
install_tool cargo-deny 0.20.2 cargo-deny
echo "setup-package-tools: ready"
