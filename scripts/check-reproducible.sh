#!/usr/bin/env bash
# Builds the function again in another directory, with another HOME (so zig's and
# cargo-zigbuild's caches start empty), CARGO_HOME, target directory, time zone and locale, later,
# and checks the bytes equal a first build's: a CLI built anywhere from the same version then
# deploys the same CodeSha256, and `status` from one machine finds no drift in code another
# deployed.
#
#   scripts/check-reproducible.sh ARCH FIRST_BOOTSTRAP
set -euo pipefail
cd "$(dirname "$0")/.."
arch="${1:?usage: $0 ARCH FIRST_BOOTSTRAP}"
first="${2:?usage: $0 ARCH FIRST_BOOTSTRAP}"
elsewhere="$(mktemp -d /tmp/tokendeploy-elsewhere.XXXXXX)"
trap 'rm -rf "$elsewhere"' EXIT
# The checkout's tracked files, copied; the same virtualenv (zig, cargo-zigbuild).
mkdir "$elsewhere/checkout"
git ls-files -z | xargs -0 cp -P --parents -t "$elsewhere/checkout"
ln -s "$(pwd)/.venv" "$elsewhere/checkout/.venv"
# Another CARGO_HOME, holding the same crates (offline: no network needed).
mkdir "$elsewhere/cargo-home"
ln -s "${CARGO_HOME:-$HOME/.cargo}/registry" "$elsewhere/cargo-home/registry"
# Another HOME, with rustup's toolchains where they are (offline, like the crates).
mkdir "$elsewhere/home"
second="$(env -u XDG_CACHE_HOME -u ZIG_GLOBAL_CACHE_DIR -u ZIG_LOCAL_CACHE_DIR \
  HOME="$elsewhere/home" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" TZ=Asia/Kathmandu LC_ALL=C \
  CARGO_HOME="$elsewhere/cargo-home" CARGO_NET_OFFLINE=true CARGO_TARGET_DIR="$elsewhere/target" \
  bash "$elsewhere/checkout/scripts/build-function.sh" "$arch" | tail -n 1)"
if cmp -s "$first" "$second"; then
  echo "reproducible: $arch bootstrap built in $elsewhere equals $first ($(sha256sum < "$first" | cut -c1-16)...)"
else
  echo "NOT reproducible: $second differs from $first" >&2
  cmp "$first" "$second" | head -n 3 >&2 || true
  exit 1
fi
