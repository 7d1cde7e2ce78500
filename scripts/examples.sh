#!/usr/bin/env bash
# Runs every example under examples/ against a fresh `sluice serve`, each to Succeeded. With
# --auth, the server checks every request (--auth sigv4) against an identities file of one user,
# whose key the examples sign with: the AWS CLI and sluice's commands through the environment,
# git through the credential helper examples/common.sh sets up.
# Needs: go, aws (the AWS CLI), git, python3.
set -euo pipefail
cd "$(dirname "$0")/.."

serve_args=()
if [ "${1:-}" = --auth ]; then
  identities=$(mktemp)
  cat >"$identities" <<'YAML'
accounts:
  - id: "000000000000"
    users:
      - name: examples
        accessKeys: [{id: AKIAEXAMPLES00000001, secret: examples-secret}]
YAML
  serve_args=(--auth sigv4 --identities "$identities")
  export AWS_ACCESS_KEY_ID=AKIAEXAMPLES00000001 AWS_SECRET_ACCESS_KEY=examples-secret
fi

. scripts/serve-for-scripts.sh "${serve_args[@]}"

export SLUICE_ENDPOINT="$endpoint" SLUICE_BIN="$sluice"
for example in examples/*/run.sh; do
  echo "+ $example"
  if ! "$example"; then
    echo "examples: $example failed; server log:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
done
