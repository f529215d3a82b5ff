# Installs what tokendeploy's build and tests need; sourced by scripts/test.sh, demo.sh and
# bench.sh. Each step is skipped when what it installs is already there.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  if ! command -v apt-get >/dev/null; then
    echo "please install $* with your distribution's package manager" >&2
    exit 1
  fi
  as_root apt-get update -qq && as_root apt-get install -y -qq "$@"
}

if ! command -v cargo >/dev/null; then
  echo "cargo not found: install Rust from https://rustup.rs first" >&2
  exit 1
fi
if ! rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
  rustup target add x86_64-unknown-linux-musl
fi

# moto, the AWS emulator, in a virtualenv of the project's own: the system Python may be
# externally managed (PEP 668); PyJWT for the emulator's HTTP API JWT authorizer.
venv="$(pwd)/.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$venv"; }
fi
if ! "$venv/bin/python" -c 'import moto.server, flask, jwt' 2>/dev/null; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'moto[server]>=5,<6' 'pyjwt>=2.8,<3'
fi
# Twilio's and LiveKit's own token libraries, pinned: tests/minted_tokens.rs checks the tokens
# the function mints against them.
if ! "$venv/bin/python" -c 'import twilio.jwt.access_token, livekit.api, importlib.metadata as m
assert [m.version("twilio"), m.version("livekit-api")] == ["9.13.0", "1.2.2"]' 2>/dev/null; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'twilio==9.13.0' 'livekit-api==1.2.2'
fi
# cargo-zigbuild and zig, pinned: scripts/zigbuild.sh builds the function (and a release's CLI)
# with zig as its C compiler and linker (zig brings musl: no musl-gcc), and the same versions
# give the same bytes.
if ! "$venv/bin/python" -c 'import importlib.metadata as m
assert [m.version("cargo-zigbuild"), m.version("ziglang")] == ["0.24.0", "0.17.1"]' 2>/dev/null; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'cargo-zigbuild==0.24.0' 'ziglang==0.17.1'
fi
# The arm64 build, only when asked: rustup's aarch64 musl target for the pinned Rust; where
# rustup cannot download it, Debian's rustc-web and cargo-web with rust-web-src
# (bookworm-security), from which scripts/zigbuild.sh builds an aarch64 musl std instead.
if [ "${TOKENDEPLOY_ARM64:-0}" = 1 ] &&
  ! rustup target list --installed | grep -qx aarch64-unknown-linux-musl &&
  ! rustup target add aarch64-unknown-linux-musl; then
  echo "rustup could not add aarch64-unknown-linux-musl: using Debian's rustc-web for arm64" >&2
  [ "$(dpkg-query -W -f '${db:Status-Status} ' rustc-web cargo-web rust-web-src 2>/dev/null)" = \
    "installed installed installed " ] ||
    apt_install --no-install-recommends rustc-web cargo-web rust-web-src
fi
export PYTHON="$venv/bin/python"
# The test harness starts moto with this interpreter.
export TOKENDEPLOY_TEST_PYTHON="$PYTHON"
