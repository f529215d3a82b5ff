#!/usr/bin/env bash
# The offline stand-in for `cargo install tokendeploy` from crates.io, then a deploy with what it
# installed, outside the repository: packages the CLI and the crates it needs (`cargo package`),
# installs the CLI from its unpacked crate in a fresh directory with the others as crates.io
# would serve them, and runs `up`, `status` and `down` with it against a moto server: each
# CPU's CodeSha256 must be the one the checkout's own CLI carries. The test command runs it
# after the tests, whose compiled dependencies it reuses; it needs the functions in
# crates/tokendeploy/embedded/ (scripts/test.sh or scripts/release.sh puts them there).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
repo="$(pwd)"
work="$(mktemp -d /tmp/tokendeploy-install.XXXXXX)"
moto_pid=
trap '[ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null; rm -rf "$work"' EXIT

crates=(tokendeploy-config tokendeploy-package tokendeploy-deploy tokendeploy-function tokendeploy)
packages=()
for crate in "${crates[@]}"; do packages+=(-p "$crate"); done
cargo package --locked --no-verify --allow-dirty --target-dir "$work/package-target" "${packages[@]}"
# Each packaged crate unpacked, as crates.io would serve it; the CLI's dependencies on the other
# four resolve to these (a [patch] of crates.io), the rest to the crates.io sources the tests
# already fetched and compiled.
patches=()
for crate in "${crates[@]}"; do
  mkdir -p "$work/unpacked/$crate"
  tar -xzf "$work/package-target/package/$crate-0.1.0.crate" -C "$work/unpacked/$crate" --strip-components=1
  [ "$crate" = tokendeploy ] || patches+=(--config "patch.crates-io.$crate.path=\"$work/unpacked/$crate\"")
done

# A fresh directory: no workspace, no checkout, only the unpacked crate.
mkdir "$work/fresh"
cp -R "$work/unpacked/tokendeploy" "$work/fresh/tokendeploy-0.1.0"
cd "$work/fresh"
# A debug build in the test build's target directory with the workspace's dev profile, so the
# crates.io dependencies the tests compiled are reused (same sources, features and profile).
# What it proves is the same as a release build's: the packaged crates hold all they need and
# compile on their own with the versions in the CLI's packaged Cargo.lock (--locked), and the
# CLI they make deploys the function it carries. (scripts/release.sh makes the release build.)
cargo install --path tokendeploy-0.1.0 --root "$work/installed" --offline --locked --debug \
  --target-dir "$repo/target" \
  --config 'profile.dev.debug="line-tables-only"' \
  --config 'profile.dev.package."*".debug=false' \
  "${patches[@]}"

port="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
MOTO_IAM_LOAD_MANAGED_POLICIES=true "$PYTHON" "$repo/crates/testkit/moto_server.py" -H 127.0.0.1 -p "$port" > /dev/null 2>&1 &
moto_pid=$!
for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done
deploy() {
  env -i HOME="$work" PATH=/nonexistent AWS_ENDPOINT_URL="http://127.0.0.1:$port" \
    AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-west-1 \
    CONSUMER_KEY=key CONSUMER_SECRET=secret ALLOWED_ORIGINS=https://app.example.com \
    "$work/installed/bin/tokendeploy" "$@"
}
sha() { sed -n 's/.*"code_sha256": *"\([^"]*\)".*/\1/p'; }
for arch in arm64 x86_64; do
  # What the checkout's CLI carries (the tests built it), against what the installed one deploys.
  expected="$(cd "$repo" && cargo run --locked --quiet -p tokendeploy -- package --quiet --output json \
    --arch "$arch" --out "$work/checkout-$arch.zip" | sha)"
  deployed="$(deploy up --quiet --output json --arch "$arch" | sha)"
  if [ -z "$expected" ] || [ "$deployed" != "$expected" ]; then
    echo "the installed CLI deployed $arch code $deployed; the checkout's carries $expected" >&2
    exit 1
  fi
  echo "installed CLI deployed the $arch function the checkout carries: CodeSha256 $deployed"
done
deploy status --quiet
deploy down --yes --quiet
echo "installed from the packaged crate in $work/fresh: up on both CPUs, status in sync, down done"
