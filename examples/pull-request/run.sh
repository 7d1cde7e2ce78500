#!/usr/bin/env bash
# Pull requests → tests, against a running Sluice, with Sluice's hosted git standing in for the
# Git server (GitHub, Gitea, Forgejo). pipeline.json is a V2 pipeline whose connection source
# watches example/greeter and whose trigger takes pull requests into main (OPEN, UPDATED); its
# Test stage runs the app's tests. The script pushes main and a feature branch, then posts the
# pull_request webhook that Gitea would send to the connection's endpoint, signed with the
# connection's secret, and waits for the run of the pull request's head commit to succeed; then
# it pushes a fix to the branch and posts the "synchronized" event, which runs the new head.
#   SLUICE_ENDPOINT   the server (default http://127.0.0.1:4566)
#   SLUICE_BIN        the sluice binary, for `sluice connection-secret` (default: curl the endpoint)
# Needs: aws (the AWS CLI), git, curl, openssl, python3.
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/../common.sh"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
pipeline=pull-request repository=example/greeter
connection_arn="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pipeline"]["stages"][0]["actions"][0]["configuration"]["ConnectionArn"])' "$here/pipeline.json")"
connection_id="${connection_arn##*/}"
g() { git -C "$work" -c user.name=Example -c user.email=example@sluice.invalid "$@"; }

echo "== push main to $endpoint/v1/repos/$repository"
cp -R "$here/app/." "$work/"
g init -q -b main
g add -A
g commit -q -m "The greeter"
base="$(g rev-parse HEAD)"
g push -q --force "$endpoint/v1/repos/$repository" HEAD:refs/heads/main

echo "== create the pipeline (its first run, at main, is CreatePipeline's; pull requests start the others)"
aws codepipeline delete-pipeline --name $pipeline 2>/dev/null || true
aws codepipeline create-pipeline --cli-input-json "file://$here/pipeline.json" --query pipeline.name --output text

echo "== the connection's webhook: what the Git server is set up with"
if [ -n "${SLUICE_BIN:-}" ]; then
  secret="$("$SLUICE_BIN" connection-secret --endpoint "$endpoint" --connection-id "$connection_arn")"
  url="$("$SLUICE_BIN" connection-secret --endpoint "$endpoint" --connection-id "$connection_arn" --url)"
else
  answer="$(curl -fsS -u "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" "$endpoint/_sluice/connections/$connection_id/secret")"
  secret="$(printf '%s' "$answer" | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')"
  url="$(printf '%s' "$answer" | python3 -c 'import json,sys; print(json.load(sys.stdin)["webhookUrl"])')"
fi
echo "payload URL $url, content type application/json, events push and pull_request, secret ${secret:0:8}…"

# pull_request ACTION HEAD_COMMIT posts pull request #1 of feature/farewell into main as Gitea
# sends it: GitHub's payload, Gitea's headers, the body's HMAC-SHA256 under the secret.
pull_request() {
  local payload signature
  payload="$(printf '{"action":"%s","number":1,"pull_request":{"number":1,"title":"Say goodbye too","state":"open","base":{"ref":"main","sha":"%s","repo":{"full_name":"%s"}},"head":{"ref":"feature/farewell","sha":"%s","repo":{"full_name":"%s"}}},"repository":{"full_name":"%s"}}' \
    "$1" "$base" "$repository" "$2" "$repository" "$repository")"
  signature="$(printf '%s' "$payload" | openssl dgst -sha256 -hmac "$secret" | sed 's/^.*= *//')"
  curl -fsS -X POST "$url" -H 'Content-Type: application/json' \
    -H 'X-Gitea-Event: pull_request' -H "X-Gitea-Delivery: $(python3 -c 'import uuid; print(uuid.uuid4())')" \
    -H "X-Gitea-Signature: $signature" -H "X-Hub-Signature-256: sha256=$signature" --data-binary "$payload"
}

# run_of COMMIT waits for the execution of COMMIT to end, shows it and fails unless it Succeeded;
# id is the execution's.
id=None
run_of() {
  id=None
  for _ in $(seq 1 60); do
    id="$(aws codepipeline list-pipeline-executions --pipeline-name $pipeline \
      --query "pipelineExecutionSummaries[?sourceRevisions[?revisionId=='$1']] | [0].pipelineExecutionId" --output text)"
    [ "$id" != None ] && break
    sleep 1
  done
  [ "$id" != None ] || { echo "pull-request: no execution of $1 started" >&2; exit 1; }
  aws codepipeline list-pipeline-executions --pipeline-name $pipeline \
    --query "pipelineExecutionSummaries[?pipelineExecutionId=='$id'] | [0].trigger.[triggerType, triggerDetail]" --output text
  wait_for_execution $pipeline "$id"
}

echo "== push the feature branch (a push starts nothing: the trigger takes pull requests only)"
g checkout -q -b feature/farewell
cat >>"$work/greet.sh" <<'EOF'
farewell() {
  printf 'Goodbye, %s!\n' "${1:-world}"
}
EOF
cat >"$work/tests/farewell.sh" <<'EOF'
check "says goodbye by name" "$(farewell Ada)" "Goodbye, Ada!"
EOF
g add -A
g commit -q -m "Say goodbye too"
head="$(g rev-parse HEAD)"
g push -q --force "$endpoint/v1/repos/$repository" HEAD:refs/heads/feature/farewell

echo "== the Git server: pull request #1 opened, head $head"
pull_request opened "$head"
run_of "$head"

echo "== a new commit on the branch, and the Git server's synchronized event"
cat >>"$work/tests/farewell.sh" <<'EOF'
check "says goodbye to the world by default" "$(farewell)" "Goodbye, world!"
EOF
g commit -q -am "Test the default farewell"
head="$(g rev-parse HEAD)"
g push -q "$endpoint/v1/repos/$repository" HEAD:refs/heads/feature/farewell
pull_request synchronized "$head"
run_of "$head"

echo "== the test log of the pull request's latest run"
if [ -n "${SLUICE_BIN:-}" ]; then
  "$SLUICE_BIN" logs --endpoint "$endpoint" --action Test $pipeline "$id" 2>/dev/null || true
fi
