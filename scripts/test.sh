#!/usr/bin/env bash
# Runs every test on a fresh machine: installs what the tests need, then `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# The musl build of the function is what `tokendeploy up` ships: built once up front, and
# carried into the CLI the tests build (crates/tokendeploy/embedded/README.md).
cargo build --release --locked --target x86_64-unknown-linux-musl -p tokendeploy-function --bin bootstrap
cp target/x86_64-unknown-linux-musl/release/bootstrap crates/tokendeploy/embedded/bootstrap-x86_64
# The browser test (crates/tokendeploy/tests/browser.rs): Debian's Chromium, driven by
# playwright-core from npm (which downloads no browser of its own).
command -v chromium >/dev/null || apt_install chromium
command -v npm >/dev/null || apt_install nodejs npm
browser_driver=crates/tokendeploy/tests/browser
[ -d "$browser_driver/node_modules/playwright-core" ] || npm ci --prefix "$browser_driver" --no-audit --no-fund
# The release workflow and the CI example: GitHub's workflow schema, and zizmor's audit.
bash scripts/check-workflows.sh
cargo test --workspace --locked --no-fail-fast "$@"
