#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian 12 machine. Run as root; CI runs it from
# .ci/run. Safe to run again: it skips what is already there.
#
# Postfix and Exim conflict as Debian packages, so neither is installed: both are unpacked from their
# .deb files into target/test-tools (or $BITS_TLS_TEST_TOOLS) and run from there, with the libraries they
# link against installed from Debian and the system users they insist on created. Nothing here touches
# the machine's own mail configuration.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
tools="${BITS_TLS_TEST_TOOLS:-$root/target/test-tools}"
export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" != 0 ]; then
  echo "setup-test-tools: run as root (it installs Debian packages and creates system users)" >&2
  exit 1
fi

updated=0
apt_update_once() {
  if [ "$updated" = 0 ]; then
    apt-get update -qq
    updated=1
  fi
}

# Libraries the unpacked binaries link against, and build tools for -sys crates.
# iproute2 and dnsmasq-base build the delivery test's private network (tests/delivery.rs), whose receiving
# servers are a Python script; procps gives `kill`, which stops the test Postfix instances; openssl makes
# the RSA key of the TLS 1.1 receiver. fish and zsh run the completion scripts (tests/completions.rs);
# acl gives setfacl/getfacl (tests/transaction.rs: a replaced file keeps its ACL).
# strace counts the system calls of a run at scale (tests/syscalls.rs); time (/usr/bin/time) measures
# the benchmarks' smoke run in .ci/run (scripts/bench.py).
# The probe (tests/probe.rs): libssl-dev and pkg-config build the `openssl` crate against the system
# libssl (the library the MTAs use); ldnsutils signs the test zones; the libraries after it are what the
# unpacked nsd (authoritative) and unbound (validating resolver) link against.
packages=(build-essential ca-certificates libdb5.3 libicu72 libnsl2 libsasl2-2 libssl3
          libgnutls30 libgnutls-dane0 libidn12 libidn2-0 libpcre2-8-0 libcrypt1
          iproute2 dnsmasq-base procps openssl fish zsh acl
          libssl-dev pkg-config ldnsutils libevent-2.1-7 libfstrm0 libprotobuf-c1 libnghttp2-14
          libpython3.11 libsystemd0 strace time)
command -v python3 >/dev/null 2>&1 || packages+=(python3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt_update_once
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The users the MTAs check for: Postfix's mail_owner and setgid_group, Exim's compiled-in user.
getent group postdrop >/dev/null || groupadd --system postdrop
getent passwd postfix >/dev/null || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin postfix
getent passwd Debian-exim >/dev/null || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin Debian-exim

unpack() { # package, directory, a file that shows it is unpacked
  local pkg=$1 dir=$2 marker=$3
  if [ -x "$dir/$marker" ]; then
    return
  fi
  apt_update_once
  mkdir -p "$tools/debs"
  rm -f "$tools/debs/${pkg}"_*.deb
  (cd "$tools/debs" && apt-get download -qq "$pkg" 2>&1 | grep -v "couldn't be accessed by user '_apt'" || true)
  rm -rf "$dir"
  mkdir -p "$dir"
  dpkg-deb -x "$tools/debs/${pkg}"_*.deb "$dir"
  test -x "$dir/$marker"
}
unpack postfix "$tools/postfix" usr/sbin/postmap
unpack exim4-daemon-light "$tools/exim" usr/sbin/exim4
# Debian's Exim configuration (split conf.d and exim4.conf.template) and update-exim4.conf, which the
# Exim tests assemble around bits-tls's pieces (tests/exim_debian.rs, tests/exim_delivery.rs).
unpack exim4-config "$tools/exim4-config" usr/sbin/update-exim4.conf
# An OpenSSL-linked Exim, built once from Debian's exim4 source package (cached in $tools).
BITS_TLS_TEST_TOOLS="$tools" bash "$root/scripts/build-exim-openssl.sh"
# Unpacked, not installed: their packages would start system services.
unpack nsd "$tools/nsd" usr/sbin/nsd
unpack unbound "$tools/unbound" usr/sbin/unbound

# Smoke checks: the binaries run.
"$tools/nsd/usr/sbin/nsd" -v >/dev/null 2>&1
"$tools/unbound/usr/sbin/unbound" -V >/dev/null 2>&1
command -v ldns-signzone >/dev/null
LD_LIBRARY_PATH="$tools/postfix/usr/lib/postfix" "$tools/postfix/usr/sbin/postconf" -d mail_version >/dev/null 2>&1
"$tools/exim/usr/sbin/exim4" -C /dev/null -bV >/dev/null 2>&1 || "$tools/exim/usr/sbin/exim4" --version | head -1 >/dev/null

command -v cargo >/dev/null 2>&1 || { echo "setup-test-tools: cargo is missing; install Rust (rustup) first" >&2; exit 1; }
for c in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
done
# The packaging step of .ci/run (scripts/package.sh, tests/package.sh).
bash "$root/scripts/setup-package-tools.sh"
echo "setup-test-tools: ready (Postfix, Exim, nsd and unbound in $tools)"
