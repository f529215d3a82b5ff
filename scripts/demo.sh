#!/usr/bin/env bash
# The main job: deploy the token server with `tokendeploy up`, show its status, take it down.
#
#   bash scripts/demo.sh                      # against a local AWS emulator (moto) started here
#   TOKENDEPLOY_TARGET=aws bash scripts/demo.sh --region us-west-1 --env-file my.env
#                                             # against your AWS account: only `up`
#
# Locally it uses dummy AWS credentials and examples/token.env unless CONSUMER_KEY is set.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --quiet --locked -p tokendeploy --bin tokendeploy
tokendeploy=target/debug/tokendeploy

if [ "${TOKENDEPLOY_TARGET:-local}" = aws ]; then
  exec "$tokendeploy" up "$@"
fi

port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MOTO_IAM_LOAD_MANAGED_POLICIES=true "$PYTHON" -m moto.server -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null' EXIT
until "$PYTHON" -c "import socket; socket.create_connection(('127.0.0.1', $port))" 2>/dev/null; do sleep 0.2; done
echo "local AWS emulator (moto) on 127.0.0.1:$port" >&2

export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION="${AWS_REGION:-us-west-1}" AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
settings=()
[ -n "${CONSUMER_KEY:-}" ] || settings=(--env-file examples/token.env)

echo "== tokendeploy up" >&2
"$tokendeploy" up "${settings[@]}" "$@"
echo "== tokendeploy status" >&2
"$tokendeploy" status "${settings[@]}" "$@"
echo "== tokendeploy plan (nothing to do)" >&2
"$tokendeploy" plan "${settings[@]}" "$@"
echo "== tokendeploy down" >&2
"$tokendeploy" down --yes "$@"
