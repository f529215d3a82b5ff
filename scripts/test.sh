#!/usr/bin/env bash
# Runs every test on a fresh machine: installs what the tests need, then `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# The musl build of the function is what `tokendeploy up` ships; build it once up front so the
# CLI tests that package it find it fresh.
cargo build --release --locked --target x86_64-unknown-linux-musl -p tokendeploy-function --bin bootstrap
cargo test --workspace --locked --no-fail-fast "$@"
