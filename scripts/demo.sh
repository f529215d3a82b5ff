#!/usr/bin/env bash
# The main job, seen working: deploy the token server with `tokendeploy up --verify`, fetch a
# token through the URL it prints, show the function's log, `status` and `plan`, take it down.
#
#   bash scripts/demo.sh                      # against the project's local AWS emulator
#   TOKENDEPLOY_TARGET=aws bash scripts/demo.sh --region us-west-1 --env-file my.env
#                                             # against your AWS account: only `up --verify`
#
# Locally it uses the emulator (scripts/emulator.sh: moto, which also serves the deployed API and
# runs the function), dummy AWS credentials, examples/dolby.env unless CONSUMER_KEY is set, and a
# stand-in for Dolby.io's token endpoint on loopback (scripts/stand-in-upstream.py).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# TOKENDEPLOY_BIN: a tokendeploy already built (the test command passes the one its tests ran).
tokendeploy="${TOKENDEPLOY_BIN:-}"
if [ -z "$tokendeploy" ]; then
  cargo build --quiet --locked -p tokendeploy --bin tokendeploy
  tokendeploy=target/debug/tokendeploy
fi

if [ "${TOKENDEPLOY_TARGET:-local}" = aws ]; then
  exec "$tokendeploy" up --verify "$@"
fi

work="$(mktemp -d /tmp/tokendeploy-demo.XXXXXX)"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
# Each helper prints its one line, then runs until this script ends.
started() { # NAME FILE: waits for the line FILE holds, prints its value
  for _ in $(seq 600); do
    if [ -s "$2" ]; then sed -n "s/^$1=//p" "$2"; return; fi
    sleep 0.1
  done
  echo "$1 did not start" >&2
  exit 1
}
bash scripts/emulator.sh > "$work/emulator" &
pids+=($!)
endpoint="$(started AWS_ENDPOINT_URL "$work/emulator")"
echo "local AWS emulator at $endpoint" >&2

export AWS_ENDPOINT_URL="$endpoint" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION="${AWS_REGION:-us-west-1}" AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
settings=()
if [ -z "${CONSUMER_KEY:-}" ]; then
  settings=(--env-file examples/dolby.env)
  export CONSUMER_KEY=your-app-key CONSUMER_SECRET=your-app-secret
fi
"$PYTHON" scripts/stand-in-upstream.py > "$work/upstream" &
pids+=($!)
TOKEN_URL="${TOKEN_URL:-$(started TOKEN_URL "$work/upstream")}"
export TOKEN_URL
echo "stand-in token endpoint at $TOKEN_URL" >&2

echo "== tokendeploy up --verify" >&2
url="$("$tokendeploy" up --verify "${settings[@]}" "$@" | head -n 1)"
echo "== curl $url" >&2
curl -fsS "$url"
echo
echo "== tokendeploy logs" >&2
"$tokendeploy" logs --since 5m "$@"
echo "== tokendeploy status" >&2
"$tokendeploy" status "${settings[@]}" "$@"
echo "== tokendeploy plan (nothing to do)" >&2
"$tokendeploy" plan "${settings[@]}" "$@"
echo "== tokendeploy down" >&2
"$tokendeploy" down --yes "$@"
echo "== curl $url (after down)" >&2
curl -sS -o /dev/null -w "%{http_code}\n" "$url"
