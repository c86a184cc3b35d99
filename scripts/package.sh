#!/usr/bin/env bash
# Builds every release artifact into target/dist/:
#   bits-tls-VERSION-TRIPLE.tar.gz    the static binary, man pages, completions, units, example config
#   bits-tls_VERSION-1_amd64.deb      for Debian and Ubuntu (dpkg-deb)
#   bits-tls-VERSION-1.x86_64.rpm     for RHEL, Rocky, Alma, SUSE (rpmbuild)
#   bits-tls-VERSION.cdx.json         the CycloneDX SBOM of the crates linked into the binary
#   *.sha256                          one checksum file per artifact (sha256sum -c)
# The binary is built once (cargo build --release --target x86_64-unknown-linux-musl --features
# vendored-openssl, about 4 minutes on 2 cores plus OpenSSL compiled from source for the probe's
# handshakes) and packed three ways; man pages, completions and the configuration come from the binary.
# Needs what scripts/setup-package-tools.sh installs. Offline apart from crates.io.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
dist="$root/target/dist"
work="$root/target/package-work"
rm -rf "$dist" "$work"
mkdir -p "$dist" "$work"

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)"
release=1
# Reproducible: every timestamp in the archives is the last commit's.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
maintainer="${BITS_TLS_MAINTAINER:-bits-tls maintainers <postmaster@example.no>}"
say() { echo "package: $*" >&2; }
die() { echo "package: error: $*" >&2; exit 1; }

# 1. The static binary. musl is the route (rustup's x86_64-unknown-linux-musl std and Debian's
#    musl-tools for the C in ring and in OpenSSL, which openssl-src builds with perl and make); without them, glibc's static linking is the fallback, which works
#    for everything but NSS lookups beyond files and DNS.
triple=x86_64-unknown-linux-musl
if rustup target list --installed 2>/dev/null | grep -qx "$triple" && command -v musl-gcc >/dev/null; then
  cargo build --release --locked --target "$triple" --features vendored-openssl
else
  say "the $triple target or musl-gcc is missing (scripts/setup-package-tools.sh); building static glibc"
  triple=x86_64-unknown-linux-gnu
  RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$triple" --features vendored-openssl
fi
bin="$work/bits-tls"
strip -o "$bin" "target/$triple/release/bits-tls"
# Proof that it is static: no interpreter, no shared library.
file "$bin" | tee "$work/file.txt" >&2
grep -Eq 'statically linked|static-pie linked' "$work/file.txt" || die "the binary is not static"
if ldd "$bin" 2>&1 | grep -q '=>'; then die "the binary links shared libraries: $(ldd "$bin")"; fi
"$bin" --version >/dev/null

# 2. What the binary generates: man pages, completions, the commented configuration.
gen="$work/gen"
mkdir -p "$gen/man" "$gen/completions"
"$bin" man --dir "$gen/man"
gzip -9n "$gen"/man/*.1
"$bin" completions bash >"$gen/completions/bits-tls"
"$bin" completions zsh >"$gen/completions/_bits-tls"
"$bin" completions fish >"$gen/completions/bits-tls.fish"
"$bin" -q init "$gen/bits-tls.toml"
# The packaged service keeps its state and history in /var/lib/bits-tls.
sed -i -e 's|^# state = "bits-tls.state.json"$|state = "/var/lib/bits-tls/bits-tls.state.json"|' \
       -e 's|^# history = "bits-tls.history.jsonl"$|history = "/var/lib/bits-tls/bits-tls.history.jsonl"|' \
       "$gen/bits-tls.toml"
grep -q '^state = "/var/lib/bits-tls/bits-tls.state.json"$' "$gen/bits-tls.toml" || die "state line not set"
grep -q '^history = "/var/lib/bits-tls/bits-tls.history.jsonl"$' "$gen/bits-tls.toml" || die "history line not set"
{
  echo "# /etc/bits-tls/bits-tls.toml: read by bits-tls.service (bits-tls --config /etc/bits-tls/bits-tls.toml sync)."
  echo "# Edit the outputs and [notify] below, check with \`bits-tls --config /etc/bits-tls/bits-tls.toml diff\`,"
  echo "# then enable the weekly run: systemctl enable --now bits-tls.timer. See bits-tls(1)."
  echo "#"
  cat "$gen/bits-tls.toml"
} >"$gen/bits-tls.toml.new"
mv "$gen/bits-tls.toml.new" "$gen/bits-tls.toml"
"$bin" --config "$gen/bits-tls.toml" --quiet diff --source examples/domeneliste-tvungen-tls.csv \
  --state "$work/probe.state.json" >/dev/null || [ $? = 2 ] || die "the packaged configuration is not valid"

# 3. One file tree per package format: the same files, in each system's places.
stage() { # dir unitdir zshdir
  local d=$1 unitdir=$2 zshdir=$3
  install -Dm755 "$bin" "$d/usr/bin/bits-tls"
  install -Dm644 "$gen/bits-tls.toml" "$d/etc/bits-tls/bits-tls.toml"
  install -dm755 "$d/var/lib/bits-tls"
  install -dm755 "$d/usr/share/man/man1"
  install -m644 "$gen"/man/*.1.gz "$d/usr/share/man/man1/"
  install -Dm644 "$gen/completions/bits-tls" "$d/usr/share/bash-completion/completions/bits-tls"
  install -Dm644 "$gen/completions/_bits-tls" "$d/$zshdir/_bits-tls"
  install -Dm644 "$gen/completions/bits-tls.fish" "$d/usr/share/fish/vendor_completions.d/bits-tls.fish"
  install -dm755 "$d/$unitdir"
  install -m644 packaging/systemd/bits-tls.service packaging/systemd/bits-tls.timer \
    packaging/systemd/bits-tls-notify@.service "$d/$unitdir/"
  install -dm755 "$d/usr/share/doc/bits-tls/examples"
  install -m644 examples/deploy/bits-tls.cron examples/deploy/ansible-task.yml \
    examples/deploy/gitlab-ci.yml examples/deploy/github-workflow.yml \
    examples/deploy/bits-tls-verify.conf "$d/usr/share/doc/bits-tls/examples/"
}

# 3a. .deb (dpkg-deb from the tree; lintian checks it in CI).
deb="$work/deb"
stage "$deb" lib/systemd/system usr/share/zsh/vendor-completions
gzip -9n "$deb/usr/share/doc/bits-tls/examples/"*
gzip -9nc README.md >"$deb/usr/share/doc/bits-tls/README.md.gz"
install -m644 packaging/deb/copyright "$deb/usr/share/doc/bits-tls/copyright"
{
  echo "bits-tls ($version-$release) unstable; urgency=medium"
  echo
  echo "  * Release $version: one static binary, man pages, completions, systemd units."
  echo
  echo " -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$deb/usr/share/doc/bits-tls/changelog.Debian.gz"
install -dm755 "$deb/DEBIAN"
install -m755 packaging/deb/prerm packaging/deb/postrm "$deb/DEBIAN/"
echo /etc/bits-tls/bits-tls.toml >"$deb/DEBIAN/conffiles"
size="$(du -sk --exclude=DEBIAN "$deb" | cut -f1)"
sed -e "s/@VERSION@/$version-$release/" -e "s/@SIZE@/$size/" -e "s/@MAINTAINER@/$maintainer/" \
  packaging/deb/control.in >"$deb/DEBIAN/control"
(cd "$deb" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) \
  >"$deb/DEBIAN/md5sums"
chmod 644 "$deb/DEBIAN/control" "$deb/DEBIAN/conffiles" "$deb/DEBIAN/md5sums"
find "$deb" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
dpkg-deb --root-owner-group -Zxz --build "$deb" "$dist/bits-tls_${version}-${release}_amd64.deb" >&2

# 3b. .rpm (rpmbuild packs the tree; %config(noreplace) for the configuration).
rpmtree="$work/rpm"
stage "$rpmtree" usr/lib/systemd/system usr/share/zsh/site-functions
install -m644 README.md "$rpmtree/usr/share/doc/bits-tls/README.md"
install -Dm644 packaging/deb/copyright "$rpmtree/usr/share/licenses/bits-tls/LICENSE"
rpmbuild -bb --quiet \
  --define "_topdir $work/rpmbuild" \
  --define "_rpmdir $dist" \
  --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
  --define "stage $rpmtree" \
  --define "version $version" \
  --define "packager $maintainer" \
  --define "changelog_date $(LC_ALL=C date -u -d "@$SOURCE_DATE_EPOCH" '+%a %b %d %Y')" \
  --define "use_source_date_epoch_as_buildtime 1" \
  --define "clamp_mtime_to_source_date_epoch 1" \
  packaging/rpm/bits-tls.spec >&2

# 3c. The tarball: the binary and everything generated, for any Linux.
name="bits-tls-$version-$triple"
tree="$work/$name"
mkdir -p "$tree/man" "$tree/completions" "$tree/systemd"
cp "$bin" "$tree/"
cp "$gen"/man/*.1.gz "$tree/man/"
cp "$gen"/completions/* "$tree/completions/"
cp packaging/systemd/* "$tree/systemd/"
cp "$gen/bits-tls.toml" "$tree/bits-tls.toml.example"
cp README.md "$tree/"
cp packaging/deb/copyright "$tree/LICENSE"
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
  -C "$work" -cf - "$name" | gzip -9n >"$dist/$name.tar.gz"

# 4. The SBOM: the crates in the binary (no dev- or build-only dependencies), with licences and hashes.
cargo cyclonedx --format json --spec-version 1.5 --target "$triple" --no-build-deps \
  --override-filename "bits-tls-$version.cdx" -qq
mv "bits-tls-$version.cdx.json" "$dist/"

# 5. Checksums.
(cd "$dist" && for f in *; do case "$f" in *.sha256) ;; *) sha256sum "$f" >"$f.sha256" ;; esac; done)
say "built in target/dist ($triple):"
ls -l "$dist" >&2
