#!/usr/bin/env bash
# Runs a command with nothing but Rust within reach: python, pip, node, npm, npx, qemu and
# Chromium on PATH answer with an error, and the tests' Python (TOKENDEPLOY_TEST_PYTHON) points
# nowhere. The test command runs `cargo test` under it, so a test that needs one of them and is
# not marked #[ignore] fails there, rather than passing on a machine that happens to have it.
#
#   scripts/rust-only.sh cargo test
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }
hidden="$(mktemp -d /tmp/tokendeploy-rust-only.XXXXXX)"
trap 'rm -rf "$hidden"' EXIT
for tool in python python3 pip pip3 node npm npx qemu-aarch64-static chromium chromedriver; do
  printf '#!/bin/sh\necho "%s was called, but this tier runs with Rust alone: mark the test #[ignore = \\"needs ...\\"] (CONTRIBUTING.md)" >&2\nexit 127\n' \
    "$tool" > "$hidden/$tool"
  chmod +x "$hidden/$tool"
done
env -u PYTHON PATH="$hidden:$PATH" TOKENDEPLOY_TEST_PYTHON="$hidden/no-python-here" "$@"
