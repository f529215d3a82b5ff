#!/usr/bin/env bash
# Builds one of the workspace's binaries for Linux, static, with zig as C compiler and linker
# (cargo-zigbuild), and prints its path. No musl-gcc or cross gcc: zig brings musl and the C
# compiler ring and aws-lc need. The same source and the same toolchains give the same bytes, in
# any directory, with any CARGO_HOME or target directory: their paths are remapped out of the
# binary. scripts/build-function.sh builds the function with it, scripts/release.sh the CLI.
#
#   scripts/zigbuild.sh x86_64|arm64 PACKAGE BINARY [cargo args...]
#
# Both CPUs use rustup's Rust as rust-toolchain.toml pins it, with its musl target
# (x86_64-unknown-linux-musl, aarch64-unknown-linux-musl; scripts/setup.sh adds them). Where
# rustup cannot add the aarch64 one (no access to static.rust-lang.org), arm64 falls back to
# Debian's rustc-web with its std built from rust-web-src (-Zbuild-std), and says so: those bytes
# are not a release's.
#
# The binary: $CARGO_TARGET_DIR/<triple>/release/BINARY, the last line on stdout (cargo's progress
# goes to stderr). Give it a target directory of its own: the flags differ from a plain
# `cargo build`, which would rebuild everything each time the two took turns.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd -P)"
usage="usage: $0 x86_64|arm64 PACKAGE BINARY [cargo args...]"
arch="${1:?$usage}"
package="${2:?$usage}"
binary_name="${3:?$usage}"
shift 3
venv="$root/.venv"
case "$arch" in
  x86_64) triple=x86_64-unknown-linux-musl ;;
  arm64 | aarch64) triple=aarch64-unknown-linux-musl ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
if [ ! -x "$venv/bin/cargo-zigbuild" ] || ! "$venv/bin/python" -m ziglang version >/dev/null 2>&1; then
  echo "cargo-zigbuild or ziglang missing from $venv: source scripts/setup.sh first" >&2
  exit 1
fi
# zig from the project's venv (`python -m ziglang`), whatever else is on PATH.
export CARGO_ZIGBUILD_PYTHON_PATH="$venv/bin/python"

target_dir="${CARGO_TARGET_DIR:?set CARGO_TARGET_DIR to a target directory for this build alone}"
mkdir -p "$target_dir"
CARGO_TARGET_DIR="$(cd "$target_dir" && pwd -P)"
export CARGO_TARGET_DIR
cargo_home="${CARGO_HOME:-$HOME/.cargo}"

cargo_args=(zigbuild --release --locked --target "$triple" -p "$package" --bin "$binary_name")
# The toolchain rust-toolchain.toml names, whatever the caller's environment would choose.
unset RUSTUP_TOOLCHAIN
if [ "$triple" = x86_64-unknown-linux-musl ] || rustup target list --installed | grep -qx "$triple"; then
  rustc=rustc
else
  echo "rustup has no $triple target here: building with Debian's rustc-web and std from source instead (not the bytes a release ships)" >&2
  # Debian's toolchain: its cargo and rustc first on PATH (cargo-zigbuild runs `cargo`).
  # No aarch64 musl std is packaged: cargo builds std from source, which takes
  # RUSTC_BOOTSTRAP on a stable compiler. The crt files, libc and libunwind are zig's, so
  # rustc must not look for self-contained ones of its own.
  if [ ! -x /usr/bin/rustc ] || [ ! -f /usr/lib/rustlib/src/rust/library/Cargo.lock ]; then
    echo "Debian's rustc-web, cargo-web and rust-web-src are needed: TOKENDEPLOY_ARM64=1 source scripts/setup.sh" >&2
    exit 1
  fi
  debian_bin="$CARGO_TARGET_DIR/debian-rust-bin"
  mkdir -p "$debian_bin"
  ln -sf /usr/bin/cargo /usr/bin/rustc /usr/bin/rustdoc "$debian_bin/"
  export PATH="$debian_bin:$PATH" RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
  rustc=/usr/bin/rustc
  cargo_args+=("-Zbuild-std=std,panic_unwind")
fi

# Paths that differ between machines, checkouts and users, remapped to fixed names: crates.io
# sources under CARGO_HOME (panic and tracing locations), this checkout and the target directory
# (build scripts' OUT_DIR). The last matching prefix wins, so the target directory comes after the
# checkout it may lie in. Each path also as given, if that differs from its resolved form.
remaps=()
remap() {
  local from="$1" to="$2" resolved
  resolved="$(cd "$from" 2>/dev/null && pwd -P || echo "$from")"
  remaps+=("--remap-path-prefix=$from=$to")
  [ "$resolved" = "$from" ] || remaps+=("--remap-path-prefix=$resolved=$to")
}
remap "$cargo_home" /cargo
remap "$root" /tokendeploy
remap "$CARGO_TARGET_DIR" /target
# Position-independent (static-pie), so the kernel loads it at a random address (ASLR): zig
# ignores the -static-pie rustc asks for, but links one when told -pie beside -static.
flags=("${remaps[@]}" -C link-arg=-pie)
if [ "$rustc" = /usr/bin/rustc ]; then
  # std's sources, named as rustup's prebuilt std names them: /rustc/<commit>.
  commit="$("$rustc" -vV | sed -n 's/^commit-hash: //p')"
  flags+=("--remap-path-prefix=$("$rustc" --print sysroot)/lib/rustlib/src/rust=/rustc/$commit")
  flags+=(-C link-self-contained=no)
fi
# RUSTFLAGS set here replaces any from the environment or cargo config: the flags are the build's.
unset RUSTFLAGS
CARGO_ENCODED_RUSTFLAGS="$(IFS=$'\x1f'; echo "${flags[*]}")"
export CARGO_ENCODED_RUSTFLAGS

{
  echo "building $binary_name for $triple with $("$rustc" -V), zig $("$venv/bin/python" -m ziglang version), $("$venv/bin/cargo-zigbuild" --version)"
  "$venv/bin/cargo-zigbuild" "${cargo_args[@]}" "$@"
} >&2

binary="$CARGO_TARGET_DIR/$triple/release/$binary_name"
# A static-pie executable for the right CPU: a 64-bit little-endian ELF, e_machine 62 (x86_64)
# or 183 (aarch64), e_type ET_DYN (position-independent), no PT_INTERP (no loader). Read with Python, there on every host (readelf is not
# on macOS), and a failure to read is a failure.
"$venv/bin/python" - "$binary" "$triple" <<'CHECK' >&2
import struct, sys
path, triple = sys.argv[1:]
with open(path, "rb") as f:
    elf = f.read()
if elf[:6] != b"\x7fELF\x02\x01":
    sys.exit(f"{path}: not a 64-bit little-endian ELF")
machine = struct.unpack_from("<H", elf, 18)[0]
if machine != {"x86_64": 62, "aarch64": 183}[triple.split("-")[0]]:
    sys.exit(f"{path}: unexpected ELF machine {machine} for {triple}")
ET_DYN = 3
if struct.unpack_from("<H", elf, 16)[0] != ET_DYN:
    sys.exit(f"{path} is not position-independent (ASLR); expected a static-pie executable")
phoff, = struct.unpack_from("<Q", elf, 32)
phentsize, phnum = struct.unpack_from("<HH", elf, 54)
PT_INTERP = 3
if any(struct.unpack_from("<I", elf, phoff + i * phentsize)[0] == PT_INTERP for i in range(phnum)):
    sys.exit(f"{path} needs a dynamic loader; expected a static executable")
CHECK
echo "$binary"
