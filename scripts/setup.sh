# Installs what tokendeploy's build and tests need; sourced by scripts/test.sh and scripts/demo.sh.
# Each step is skipped when its tool is already there.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v cargo >/dev/null; then
  echo "cargo not found: install Rust from https://rustup.rs first" >&2
  exit 1
fi
if ! rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
  rustup target add x86_64-unknown-linux-musl
fi
# ring (TLS in the function) compiles C; for the musl target that takes musl-gcc.
if ! command -v musl-gcc >/dev/null; then
  if command -v apt-get >/dev/null; then
    as_root apt-get update -qq && as_root apt-get install -y -qq musl-tools
  else
    echo "musl-gcc not found: install your distribution's musl tools (Debian: musl-tools)" >&2
    exit 1
  fi
fi
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import moto.server, flask' 2>/dev/null; then
  "$PYTHON" -m pip install --quiet 'moto[server]>=5'
fi
export TOKENDEPLOY_TEST_PYTHON="$PYTHON"
