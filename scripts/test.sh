#!/usr/bin/env bash
# Every test, on a fresh machine: installs what the tests need, then, cheapest first, style and
# lints, the workflows, the tier that needs only Rust (with every other tool out of reach), the
# function built as it ships for both CPUs (and again elsewhere: the same bytes), the tests that
# need the emulator or another tool, and last the install check. CONTRIBUTING.md tells the tiers
# and how long each takes.
#
#   scripts/test.sh [FILTER...]     FILTERs narrow both tiers' tests, as `cargo test FILTER` does
set -euo pipefail
cd "$(dirname "$0")/.."
# The arm64 build's toolchain too, and qemu to run what it builds.
export TOKENDEPLOY_ARM64=1
source scripts/setup.sh
command -v qemu-aarch64-static >/dev/null || apt_install qemu-user-static
# The browser test: Debian's Chromium, driven by playwright-core from npm (which downloads no
# browser of its own).
command -v chromium >/dev/null || apt_install chromium
# A pseudo-terminal for the test of the several-region display: util-linux's `script`.
command -v script >/dev/null || apt_install bsdutils
command -v npm >/dev/null || apt_install nodejs npm
browser_driver=crates/tokendeploy/tests/browser
[ -d "$browser_driver/node_modules/playwright-core" ] || npm ci --prefix "$browser_driver" --no-audit --no-fund

step() { printf '\n== %s (%s)\n' "$1" "$(date +%T)" >&2; }

step "style: cargo fmt and clippy"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "workflows: GitHub's schema and zizmor"
bash scripts/check-workflows.sh

step "tier 1: cargo test, with Rust alone"
bash scripts/rust-only.sh cargo test --workspace --locked --no-fail-fast -- "$@"

step "the function as it ships, both CPUs"
# Built with zig as C compiler and linker: a musl-gcc on PATH that fails proves the build needs
# none (Debian's musl-tools). Each is carried into the CLI the next tier builds
# (crates/tokendeploy/embedded/README.md).
no_musl_gcc="$(mktemp -d)"
printf '#!/bin/sh\necho "musl-gcc was called: the function must build without musl-tools" >&2\nexit 1\n' > "$no_musl_gcc/musl-gcc"
chmod +x "$no_musl_gcc/musl-gcc"
for arch in x86_64 arm64; do
  bootstrap="$(PATH="$no_musl_gcc:$PATH" bash scripts/build-function.sh "$arch" | tail -n 1)"
  cp "$bootstrap" "crates/tokendeploy/embedded/bootstrap-$arch"
done
rm -rf "$no_musl_gcc"

step "the same bytes from another directory, HOME, CARGO_HOME and target directory"
for arch in x86_64 arm64; do
  bash scripts/check-reproducible.sh "$arch" "crates/tokendeploy/embedded/bootstrap-$arch"
done

step "tier 2: the tests that need the emulator, the shipped function, Python, qemu or Chromium"
cargo test --workspace --locked --no-fail-fast -- --ignored "$@"

step "demo: the main job against the emulator ends with a token fetched through the URL"
demo="$(TOKENDEPLOY_BIN=target/debug/tokendeploy bash scripts/demo.sh 2>&1)" || { printf '%s\n' "$demo" >&2; exit 1; }
grep -q '"access_token":"stand-in-' <<< "$demo" || { printf '%s\n' "$demo" >&2; echo "the demo fetched no token" >&2; exit 1; }

step "install: the packaged crates install and deploy (the stand-in for cargo install)"
bash scripts/check-install.sh
step "all tests passed"
