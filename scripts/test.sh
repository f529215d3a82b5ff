#!/usr/bin/env bash
# Runs every test on a fresh machine: installs what the tests need, then `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
# The arm64 build's toolchain too, and qemu to run what it builds.
export TOKENDEPLOY_ARM64=1
source scripts/setup.sh
command -v qemu-aarch64-static >/dev/null || apt_install qemu-user-static
# The function as `tokendeploy up` ships it, for both CPUs, built with zig as C compiler and
# linker: a musl-gcc on PATH that fails proves the build needs none (Debian's musl-tools). Each
# is carried into the CLI the tests build (crates/tokendeploy/embedded/README.md).
no_musl_gcc="$(mktemp -d)"
printf '#!/bin/sh\necho "musl-gcc was called: the function must build without musl-tools" >&2\nexit 1\n' > "$no_musl_gcc/musl-gcc"
chmod +x "$no_musl_gcc/musl-gcc"
for arch in x86_64 arm64; do
  bootstrap="$(PATH="$no_musl_gcc:$PATH" bash scripts/build-function.sh "$arch" | tail -n 1)"
  cp "$bootstrap" "crates/tokendeploy/embedded/bootstrap-$arch"
done
rm -rf "$no_musl_gcc"
# The same bytes from another directory, CARGO_HOME and target directory.
for arch in x86_64 arm64; do
  bash scripts/check-reproducible.sh "$arch" "crates/tokendeploy/embedded/bootstrap-$arch"
done
# The browser test (crates/tokendeploy/tests/browser.rs): Debian's Chromium, driven by
# playwright-core from npm (which downloads no browser of its own).
command -v chromium >/dev/null || apt_install chromium
command -v npm >/dev/null || apt_install nodejs npm
browser_driver=crates/tokendeploy/tests/browser
[ -d "$browser_driver/node_modules/playwright-core" ] || npm ci --prefix "$browser_driver" --no-audit --no-fund
# The release workflow and the CI example: GitHub's workflow schema, and zizmor's audit.
bash scripts/check-workflows.sh
cargo test --workspace --locked --no-fail-fast "$@"
# The offline stand-in for `cargo install tokendeploy`: the packaged crates install in a fresh
# directory, and the installed CLI deploys the function the checkout's carries.
bash scripts/check-install.sh
