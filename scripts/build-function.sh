#!/usr/bin/env bash
# Builds the Lambda function's `bootstrap` as `tokendeploy up` ships it (scripts/zigbuild.sh:
# static, zig-linked, paths remapped, the same bytes anywhere) and prints its path:
# ${CARGO_TARGET_DIR:-target/function}/<triple>/release/bootstrap.
#
#   scripts/build-function.sh [x86_64|arm64] [cargo args...]
set -euo pipefail
cd "$(dirname "$0")/.."
arch="${1:-x86_64}"
shift $(($# > 0 ? 1 : 0))
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(pwd -P)/target/function}" \
  exec bash scripts/zigbuild.sh "$arch" tokendeploy-function bootstrap "$@"
