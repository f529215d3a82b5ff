#!/usr/bin/env bash
# The offline stand-in for `cargo install tokendeploy` from crates.io, then a deploy with what it
# installed, outside the repository: packages the CLI and the crates it needs (`cargo package`),
# serves them with every dependency as a local directory registry (`cargo vendor`), installs the
# CLI from its unpacked crate in a fresh directory, and runs `up`, `status` and `down` with it
# against a moto server: each CPU's CodeSha256 must be the one the checkout's own CLI carries.
# The test command runs it after the tests (a release build of the whole CLI, as `cargo install`
# does it: many minutes); it needs the functions in crates/tokendeploy/embedded/ (scripts/test.sh
# or scripts/release.sh puts them there).
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
# Not --offline: vendoring takes every platform's crates (Windows' too), which no build here
# has downloaded.
cargo vendor --locked "$work/registry" > /dev/null
for crate in "${crates[@]}"; do
  file="$work/package-target/package/$crate-0.1.0.crate"
  mkdir "$work/registry/$crate"
  tar -xzf "$file" -C "$work/registry/$crate" --strip-components=1
  printf '{"files":{},"package":"%s"}' "$(sha256sum "$file" | cut -d' ' -f1)" > "$work/registry/$crate/.cargo-checksum.json"
done

# A fresh directory: no workspace, no checkout, only the unpacked crate.
mkdir "$work/fresh"
tar -xzf "$work/package-target/package/tokendeploy-0.1.0.crate" -C "$work/fresh"
cd "$work/fresh"
cargo install --path tokendeploy-0.1.0 --root "$work/installed" --offline --locked \
  --target-dir "$work/install-target" \
  --config 'source.crates-io.replace-with="local-registry"' \
  --config "source.local-registry.directory=\"$work/registry\""

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
