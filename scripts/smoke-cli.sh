#!/usr/bin/env bash
# Smoke check with the AWS CLI: start a real `sluice serve` on a free loopback port and talk to it
# the way a user would. Needs: go, aws (the AWS CLI), jq.
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

export AWS_ACCESS_KEY_ID=smoke AWS_SECRET_ACCESS_KEY=smoke AWS_DEFAULT_REGION=us-east-1
cp() { aws --endpoint-url "http://127.0.0.1:$port" codepipeline "$@"; }
fail() { echo "smoke: $*" >&2; cat "$work/server.log" >&2; exit 1; }

# expect_error CODE MESSAGE-FRAGMENT -- ARGS...: the command must fail with that AWS error.
expect_error() {
  local code=$1 fragment=$2; shift 3
  local out
  if out=$(cp "$@" 2>&1); then fail "'$*' succeeded, want $code: $out"; fi
  [[ $out == *"($code)"* && $out == *"$fragment"* ]] || fail "'$*': want $code with '$fragment', got: $out"
}

out=$(cp list-pipelines 2>&1) || true
if ! jq -e '.pipelines | type == "array"' <<<"$out" >/dev/null 2>&1; then
  [[ $out == *"(NotImplementedException)"*"ListPipelines"* ]] || fail "list-pipelines: $out"
fi
expect_error ValidationException "Value 'bad name!' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern" -- get-pipeline --name 'bad name!'
echo "smoke: AWS CLI session passed"
