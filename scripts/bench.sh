#!/usr/bin/env bash
# Measures the release bootstrap as Lambda runs it (see bench/src/main.rs). Prints JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --locked --target x86_64-unknown-linux-musl -p tokendeploy-function --bin bootstrap
cargo run --quiet --locked -p tokendeploy-bench -- target/x86_64-unknown-linux-musl/release/bootstrap
