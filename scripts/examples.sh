#!/usr/bin/env bash
# Runs every example under examples/ against a fresh `sluice serve`, each to Succeeded.
# Needs: go, aws (the AWS CLI), git, python3.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/serve-for-scripts.sh

export SLUICE_ENDPOINT="$endpoint" SLUICE_BIN="$sluice"
for example in examples/*/run.sh; do
  echo "+ $example"
  if ! "$example"; then
    echo "examples: $example failed; server log:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
done
