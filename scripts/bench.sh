#!/usr/bin/env bash
# Measures the release bootstrap as Lambda runs it beside the tutorial's Node.js function
# (bench/src/main.rs, bench/node), `tokendeploy serve` beside the tutorial's Express server
# (bench/src/serve.rs), then the deployer's calls, depth and IAM-propagation lag against a moto
# server (bench/src/deploy.rs). Prints JSON; bench/RESULTS.md records it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
bootstrap="$(bash scripts/build-function.sh x86_64 | tail -n 1)"
# The Node.js baseline: Node itself, axios for the function, and AWS's Runtime Interface Client,
# whose native part builds with cmake and autotools.
command -v npm >/dev/null || apt_install nodejs npm
command -v cmake >/dev/null && command -v autoreconf >/dev/null && command -v libtoolize >/dev/null ||
  apt_install cmake autoconf automake libtool make g++
[ -d bench/node/function/node_modules ] || npm ci --prefix bench/node/function --omit=dev --no-audit --no-fund
[ -d bench/node/runtime/node_modules ] || npm ci --prefix bench/node/runtime --no-audit --no-fund
[ -d bench/node/express/node_modules ] || npm ci --prefix bench/node/express --omit=dev --no-audit --no-fund
command -v wrk >/dev/null || apt_install wrk
cargo build --release --locked -p tokendeploy -p tokendeploy-bench
target/release/function-bench "$bootstrap"
# `tokendeploy serve` against the tutorial's Express server, under wrk.
target/release/serve-bench
# The baseline: the tutorial's steps as an aws CLI script (bench/tutorial/deploy.sh).
"$PYTHON" -c 'import awscli' 2>/dev/null || "$PYTHON" -m pip install --quiet --disable-pip-version-check awscli
export PATH="$(dirname "$PYTHON"):$PATH"
target/release/deploy-bench
