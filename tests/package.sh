#!/usr/bin/env bash
# The packages, proven with the real tools, after `bash scripts/package.sh` (CI runs both from .ci/run):
# checksums, a static binary, lintian and rpmlint without errors, the package contents against the
# golden listings in tests/golden/, and on this machine: dpkg -i, the installed binary, man page and
# units (systemd-analyze verify), the timer not enabled, main.cf untouched, dpkg -r keeping the
# configuration and purge removing it. BITS_TLS_BLESS=1 rewrites the golden listings.
# Run as root: it installs and purges the .deb (a bits-tls package already installed is refused).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dist="$root/target/dist"
golden="$root/tests/golden"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -1)"
deb="$dist/bits-tls_${version}-1_amd64.deb"
rpm="$dist/bits-tls-${version}-1.x86_64.rpm"
tarball="$(ls "$dist"/bits-tls-"$version"-x86_64-unknown-linux-*.tar.gz)"
sbom="$dist/bits-tls-$version.cdx.json"
tmp="$(mktemp -d)"
passed=0
failed=0

ok() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAILED: $*" >&2; failed=$((failed + 1)); }
check() { # description, command...
  local what=$1
  shift
  if "$@" >"$tmp/out" 2>&1; then ok "$what"; else fail "$what"; sed 's/^/    /' "$tmp/out" >&2; fi
}
compare_golden() { # name, actual file
  if [ "${BITS_TLS_BLESS:-}" = 1 ]; then cp "$2" "$golden/$1"; fi
  if diff -u "$golden/$1" "$2" >"$tmp/diff"; then ok "contents match tests/golden/$1"; else
    fail "contents differ from tests/golden/$1 (BITS_TLS_BLESS=1 to accept)"; cat "$tmp/diff" >&2; fi
}

[ "$(id -u)" = 0 ] || { echo "tests/package.sh: run as root (dpkg -i)" >&2; exit 1; }
for f in "$deb" "$rpm" "$tarball" "$sbom"; do [ -f "$f" ] || { echo "missing $f: run scripts/package.sh" >&2; exit 1; }; done
if dpkg-query -W -f='${Status}' bits-tls 2>/dev/null | grep -q installed; then
  echo "tests/package.sh: a bits-tls package is installed already; remove it first" >&2
  exit 1
fi
cleanup() {
  dpkg --purge bits-tls >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# Checksums and the SBOM.
check "every artifact has a matching .sha256" bash -c "cd '$dist' && for f in *.sha256; do sha256sum -c \"\$f\" || exit 1; done && [ \$(ls *.sha256 | wc -l) = 4 ]"
check "the SBOM is CycloneDX 1.5 JSON listing the linked crates with licences" python3 -c "
import json, sys
d = json.load(open('$sbom'))
assert d['bomFormat'] == 'CycloneDX' and d['specVersion'] == '1.5', d.get('specVersion')
names = {c['name'] for c in d['components']}
for n in ('reqwest', 'rustls', 'ring', 'clap', 'minijinja'):
    assert n in names, n
for n in ('proptest', 'assert_cmd', 'tree-sitter'):
    assert n not in names, n + ' is a dev-dependency'
assert all(c.get('licenses') for c in d['components']), 'a component without a licence'
"

# The tarball's binary is static and runs.
tar -xzf "$tarball" -C "$tmp"
bin="$(ls "$tmp"/bits-tls-*/bits-tls)"
check "file says the binary is static" bash -c "file '$bin' | grep -E 'static-pie linked|statically linked'"
check "ldd finds no shared library" bash -c "! ldd '$bin' 2>&1 | grep -q '=>'"
check "the tarball's binary runs" "$bin" --version

# Linters.
check "lintian: no errors" lintian --fail-on error "$deb"
check "rpmlint: no errors (deliberate findings filtered in packaging/rpm/bits-tls.rpmlintrc)" \
  rpmlint -r "$root/packaging/rpm/bits-tls.rpmlintrc" "$rpm"

# What is in each package: paths, modes, owners; for the rpm also the config flags.
dpkg-deb -c "$deb" | awk '{print $1, $2, $6}' >"$tmp/deb.txt"
compare_golden package-deb.txt "$tmp/deb.txt"
rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME}/%{FILEGROUPNAME} %-2{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpm" \
  >"$tmp/rpm.txt" 2>/dev/null
compare_golden package-rpm.txt "$tmp/rpm.txt"
check "rpm: the configuration is %config(noreplace)" grep -qx -- '-rw-r--r-- root/root cn /etc/bits-tls/bits-tls.toml' "$tmp/rpm.txt"
check "rpm -qlp lists the binary and the units" bash -c "rpm -qlp '$rpm' | grep -qx /usr/bin/bits-tls && rpm -qlp '$rpm' | grep -qx /usr/lib/systemd/system/bits-tls.timer"
check "deb: the configuration is a conffile" bash -c "dpkg-deb -f '$deb' Package >/dev/null && dpkg-deb --ctrl-tarfile '$deb' | tar -xOf - ./conffiles | grep -qx /etc/bits-tls/bits-tls.toml"
check "no package writes to /etc/postfix or /etc/exim4" bash -c "! grep -E '/etc/(postfix|exim4)' '$tmp/deb.txt' '$tmp/rpm.txt'"

# Installed on this machine.
maincf_before="$(sha256sum /etc/postfix/main.cf 2>/dev/null || echo none)"
check "dpkg -i installs the package" dpkg -i "$deb"
check "/usr/bin/bits-tls --version" bash -c "[ \"\$(command -v bits-tls)\" = /usr/bin/bits-tls ] && /usr/bin/bits-tls --version | grep -qx 'bits-tls $version'"
check "bits-tls sync --help from the installed binary" bash -c "/usr/bin/bits-tls sync --help | grep -q -- '--detailed-exitcode'"
check "man -w bits-tls finds the installed page" bash -c "man -w bits-tls | grep -qx /usr/share/man/man1/bits-tls.1.gz && man -w bits-tls-sync | grep -q bits-tls-sync.1.gz"
check "the installed page has EXIT STATUS, FILES, ENVIRONMENT, EXAMPLES" bash -c "
  page=\$(MANWIDTH=100 man bits-tls 2>/dev/null | col -b)
  for s in 'EXIT STATUS' FILES ENVIRONMENT EXAMPLES; do grep -q \"^\$s\" <<<\"\$page\" || { echo \"no \$s\"; exit 1; }; done"
check "the packaged configuration is valid and keeps state in /var/lib/bits-tls" bash -c "
  grep -qx 'state = \"/var/lib/bits-tls/bits-tls.state.json\"' /etc/bits-tls/bits-tls.toml &&
  /usr/bin/bits-tls --config /etc/bits-tls/bits-tls.toml -q diff --source '$root/examples/domeneliste-tvungen-tls.csv' \
    --state '$tmp/probe.json' >/dev/null; [ \$? = 2 ]"
check "systemd-analyze verify of the installed units" \
  systemd-analyze verify /lib/systemd/system/bits-tls.service /lib/systemd/system/bits-tls.timer \
  /lib/systemd/system/bits-tls-notify@bits-tls.service.service
check "the timer is installed but not enabled" bash -c "
  [ \"\$(systemctl --root=/ is-enabled bits-tls.timer 2>&1)\" = disabled ] &&
  [ ! -e /etc/systemd/system/timers.target.wants/bits-tls.timer ]"
check "ReadWritePaths that may be absent carry the - prefix" bash -c "
  grep -x 'ReadWritePaths=-/etc/postfix -/etc/exim4 -/etc/bits-tls' /lib/systemd/system/bits-tls.service &&
  grep -x 'OnFailure=bits-tls-notify@%n.service' /lib/systemd/system/bits-tls.service"
check "main.cf is untouched" bash -c "[ \"\$(sha256sum /etc/postfix/main.cf 2>/dev/null || echo none)\" = '$maincf_before' ]"
check "bash completion is installed where bash-completion looks" test -f /usr/share/bash-completion/completions/bits-tls

echo "# edited by the admin" >>/etc/bits-tls/bits-tls.toml
check "dpkg -r removes the package" dpkg -r bits-tls
check "dpkg -r keeps /etc/bits-tls with the admin's edit" grep -qx '# edited by the admin' /etc/bits-tls/bits-tls.toml
check "dpkg -r removes the binary" test ! -e /usr/bin/bits-tls
check "dpkg --purge purges" dpkg --purge bits-tls
check "purge removes /etc/bits-tls and /var/lib/bits-tls" bash -c "[ ! -e /etc/bits-tls ] && [ ! -e /var/lib/bits-tls ]"

echo "package: $passed passed, $failed failed"
[ "$failed" = 0 ]
