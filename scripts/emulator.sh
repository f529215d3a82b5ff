#!/usr/bin/env bash
# The project's local AWS: moto with crates/testkit/moto_server.py's additions (where moto is
# kinder than AWS it plays AWS, docs/aws-behaviours.md), which also serves the deployed REST
# APIs at their invoke URLs and runs the functions behind them (emulator/). In the foreground
# until Ctrl-C; prints one line once it answers:
#
#   AWS_ENDPOINT_URL=http://127.0.0.1:PORT
#
#   scripts/emulator.sh [--port N] [--verbose]    --verbose: moto's request log on stderr
set -euo pipefail
cd "$(dirname "$0")/.."
port=
verbose=0
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port="${2:?--port needs a number}"; shift 2 ;;
    --verbose) verbose=1; shift ;;
    *) echo "usage: $0 [--port N] [--verbose]" >&2; exit 2 ;;
  esac
done
source scripts/setup.sh >&2
if [ -z "$port" ]; then
  port="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
fi
case "$port" in
  '' | *[!0-9]*) echo "--port must be a number, such as 4566" >&2; exit 2 ;;
esac
log=/dev/null
[ "$verbose" = 1 ] && log=/dev/stderr
MOTO_IAM_LOAD_MANAGED_POLICIES=true "$PYTHON" crates/testkit/moto_server.py -H 127.0.0.1 -p "$port" > "$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null' EXIT
trap 'exit 0' INT TERM
for _ in $(seq 300); do
  if ! kill -0 "$server" 2>/dev/null; then
    echo "the emulator did not start (is port $port free?)" >&2
    exit 1
  fi
  if "$PYTHON" -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; then
    echo "AWS_ENDPOINT_URL=http://127.0.0.1:$port"
    wait "$server"
    exit $?
  fi
  sleep 0.2
done
echo "the emulator did not answer on port $port within a minute" >&2
exit 1
