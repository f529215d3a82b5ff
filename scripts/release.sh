#!/usr/bin/env bash
# Builds the release files for VERSION into dist/, with their SHA256SUMS:
#
#   scripts/release.sh VERSION          on Linux: the function for x86_64 and arm64
#                                       (scripts/build-function.sh), the CLI carrying both for
#                                       Linux x86_64 and aarch64 (static musl, scripts/zigbuild.sh),
#                                       and the function's zips for --zip users
#   scripts/release.sh --macos VERSION  on macOS: the CLI for aarch64 and x86_64 macOS, carrying
#                                       the function the Linux job built (put in
#                                       crates/tokendeploy/embedded/ first), so every CLI of a
#                                       version deploys the same CodeSha256
#
# Each tarball holds one file, `tokendeploy`; tarballs and zips are deterministic (fixed times,
# owners and order). The CodeSha256 each zip deploys is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
macos=0
if [ "${1:-}" = --macos ]; then macos=1; shift; fi
version="${1:?usage: scripts/release.sh [--macos] VERSION}"
workspace_version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
if [ "$version" != "$workspace_version" ]; then
  echo "VERSION $version is not the workspace's version $workspace_version (Cargo.toml)" >&2
  exit 2
fi
embedded=crates/tokendeploy/embedded
rm -rf dist
mkdir -p dist

if [ "$macos" = 0 ]; then
  TOKENDEPLOY_ARM64=1 source scripts/setup.sh
  # Released bytes come from the pinned toolchain only, never the Debian fallback.
  if ! rustup target list --installed | grep -qx aarch64-unknown-linux-musl; then
    echo "a release needs rustup's aarch64-unknown-linux-musl target for the Rust rust-toolchain.toml pins" >&2
    exit 1
  fi
  for arch in x86_64 arm64; do
    cp "$(bash scripts/build-function.sh "$arch" | tail -n 1)" "$embedded/bootstrap-$arch"
  done
  cli_targets=(x86_64 arm64)
else
  for arch in x86_64 arm64; do
    [ -f "$embedded/bootstrap-$arch" ] || { echo "$embedded/bootstrap-$arch: copy in the Linux job's function first" >&2; exit 1; }
  done
  cli_targets=(aarch64-apple-darwin x86_64-apple-darwin)
fi

for target in "${cli_targets[@]}"; do
  if [ "$macos" = 0 ]; then
    cli="$(CARGO_TARGET_DIR=target/release-cli bash scripts/zigbuild.sh "$target" tokendeploy tokendeploy | tail -n 1)"
    target="$(basename "$(dirname "$(dirname "$cli")")")" # the triple: <dir>/<triple>/release/tokendeploy
  else
    rustup target list --installed | grep -qx "$target" || rustup target add "$target"
    cargo build --release --locked --target "$target" -p tokendeploy
    cli="target/$target/release/tokendeploy"
  fi
  # With Python's tarfile and gzip, not tar: macOS's bsdtar has no GNU tar's --sort, --mtime or
  # --owner.
  python3 - "$cli" "dist/tokendeploy-$version-$target.tar.gz" <<'TARBALL'
import gzip, io, sys, tarfile
cli, tarball = sys.argv[1:]
with open(cli, "rb") as f:
    data = f.read()
member = tarfile.TarInfo("tokendeploy")
member.size, member.mode, member.mtime = len(data), 0o755, 0
member.uid = member.gid = 0
member.uname = member.gname = "root"
with open(tarball, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0, filename="") as gz:
    with tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(member, io.BytesIO(data))
TARBALL
done

if [ "$macos" = 0 ]; then
  # The zips the CLI carries, written by the CLI itself: the same bytes, the same CodeSha256.
  for arch in x86_64 arm64; do
    code_sha256="$(target/release-cli/x86_64-unknown-linux-musl/release/tokendeploy package --quiet \
      --output json --arch "$arch" --out "dist/bootstrap-$version-$arch.zip" \
      | sed -n 's/.*"code_sha256": *"\([^"]*\)".*/\1/p')"
    if [ -z "$code_sha256" ]; then
      echo "tokendeploy package named no code_sha256 for $arch" >&2
      exit 1
    fi
    echo "CodeSha256 of bootstrap-$version-$arch.zip: $code_sha256"
  done
fi
# shasum: on macOS as on Linux (macOS has no sha256sum); the same format.
(cd dist && shasum -a 256 -- * | LC_ALL=C sort -k 2 > SHA256SUMS && cat SHA256SUMS)
