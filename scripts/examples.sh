#!/usr/bin/env bash
# Runs every example under examples/ against a fresh `sluice serve`, each to Succeeded.
# Needs: go, aws (the AWS CLI), git, python3.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
go build -o "$work/sluice" ./cmd/sluice
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$work/sluice" serve --listen "127.0.0.1:$port" --data "$work/data" >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/_sluice/health" >/dev/null && break
  sleep 0.1
done

export SLUICE_ENDPOINT="http://127.0.0.1:$port" SLUICE_BIN="$work/sluice"
for example in examples/*/run.sh; do
  echo "+ $example"
  if ! "$example"; then
    echo "examples: $example failed; server log:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
done
