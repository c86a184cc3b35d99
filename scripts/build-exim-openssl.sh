#!/usr/bin/env bash
# Builds Exim 4.96 linked against OpenSSL from Debian's own exim4 source package, for the tests that prove
# the `--exim-tls openssl` variant on a real OpenSSL Exim (Debian ships only GnuTLS builds). Called by
# setup-test-tools.sh; run as root. The binary is cached: a second run finds it and does nothing.
#
# The source comes from the same Debian archive as the system's packages, through apt itself: a private
# deb-src list derived from the system's sources (nothing under /etc/apt is changed), then
# `apt-get source --download-only` and `dpkg-source -x`. Debian's own build configuration for the light
# daemon is used with Debian's OpenSSL patch for it (debian/EDITME.openssl.exim4-light.diff); only the
# X11 monitor is left out. About a minute on two cores.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
tools="${BITS_TLS_TEST_TOOLS:-$root/target/test-tools}"
out="$tools/exim-openssl/usr/sbin/exim4"
export DEBIAN_FRONTEND=noninteractive

if [ -x "$out" ] && "$out" -C /dev/null --version 2>/dev/null | grep -q "OpenSSL"; then
  exit 0
fi

build_deps=(dpkg-dev libssl-dev libpcre2-dev libdb5.3-dev libidn-dev libidn2-dev libnsl-dev)
missing=()
for p in "${build_deps[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

work="$tools/exim-openssl-build"
rm -rf "$work"
mkdir -p "$work/apt/lists/partial" "$work/apt/sources.list.d" "$work/src"

# deb-src entries for the Debian archive entries the system uses (deb822 .sources files and one-line
# .list files), so the source comes from the same mirror as the binaries.
for f in /etc/apt/sources.list.d/*.sources; do
  [ -e "$f" ] && grep -q '^URIs:.*/debian' "$f" || continue
  sed -e 's/^Types:.*$/Types: deb-src/' "$f" > "$work/apt/sources.list.d/$(basename "$f")"
done
{
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -e "$f" ] || continue
    sed -n -e '/\/debian/s/^[[:space:]]*deb[[:space:]]/deb-src /p' "$f"
  done
} > "$work/apt/sources.list"
apt_private=(-o "Dir::Etc::SourceList=$work/apt/sources.list"
             -o "Dir::Etc::SourceParts=$work/apt/sources.list.d"
             -o "Dir::State::Lists=$work/apt/lists")
apt-get "${apt_private[@]}" update -qq
(cd "$work/src" && apt-get "${apt_private[@]}" source --download-only -qq exim4 2>&1 \
  | grep -v "couldn't be accessed by user '_apt'" || true)
(cd "$work/src" && dpkg-source -x --no-check ./exim4_*.dsc exim >/dev/null)

src="$work/src/exim"
patch -s -o "$src/EDITME.exim4-light" "$src/src/EDITME" "$src/debian/EDITME.exim4-light.diff"
patch -s "$src/EDITME.exim4-light" "$src/debian/EDITME.openssl.exim4-light.diff"
mkdir -p "$src/Local"
sed -e 's/^EXIM_MONITOR=/# EXIM_MONITOR=/' "$src/EDITME.exim4-light" > "$src/Local/Makefile"
grep -q '^USE_OPENSSL=yes' "$src/Local/Makefile"
make -C "$src" -j"$(nproc)" FULLECHO='' > "$work/build.log" 2>&1 || {
  tail -40 "$work/build.log" >&2
  echo "build-exim-openssl: the build failed; the whole log is in $work/build.log" >&2
  exit 1
}
mkdir -p "$(dirname "$out")"
install -m 0755 "$src"/build-*/exim "$out"
"$out" -C /dev/null --version 2>/dev/null | grep -q "OpenSSL"
rm -rf "$work"
echo "build-exim-openssl: built $out"
