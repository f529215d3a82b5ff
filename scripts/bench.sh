#!/usr/bin/env bash
# Measures the release bootstrap as Lambda runs it (bench/src/main.rs), then the deployer's
# calls, depth and IAM-propagation lag against a moto server (bench/src/deploy.rs). Prints JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --locked --target x86_64-unknown-linux-musl -p tokendeploy-function --bin bootstrap
cargo run --quiet --locked -p tokendeploy-bench --bin function-bench -- target/x86_64-unknown-linux-musl/release/bootstrap
# The baseline: the tutorial's steps as an aws CLI script (bench/tutorial/deploy.sh).
"$PYTHON" -c 'import awscli' 2>/dev/null || "$PYTHON" -m pip install --quiet --disable-pip-version-check awscli
export PATH="$(dirname "$PYTHON"):$PATH"
cargo build --release --locked -p tokendeploy
cargo run --quiet --locked -p tokendeploy-bench --bin deploy-bench
