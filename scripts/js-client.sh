#!/usr/bin/env bash
# The AWS SDK for JavaScript v3 (@aws-sdk/client-codepipeline) against a real `sluice serve`: every
# operation of the client on its happy path and modelled errors decoded into the SDK's exception
# classes (scripts/js-client/client.mjs). Needs: go, node (18+) and npm; the packages come from
# scripts/js-client/package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/serve-for-scripts.sh

if ! out=$(cd scripts/js-client && npm ci --no-audit --no-fund --loglevel=error 2>&1); then
  echo "js-client: npm ci failed:" >&2
  echo "$out" >&2
  exit 1
fi

status=0
SLUICE_ENDPOINT=$endpoint AWS_ACCESS_KEY_ID=js-client AWS_SECRET_ACCESS_KEY=js-client AWS_REGION=us-east-1 \
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true node scripts/js-client/client.mjs || status=$?
if [[ $status != 0 ]]; then
  echo "js-client: the end of the server log:" >&2
  tail -n 40 "$work/server.log" >&2
fi
exit $status
