#!/usr/bin/env bash
# Smoke check with the AWS CLI: start a real `sluice serve` on a free loopback port and talk to it
# the way a user would. Needs: go, aws (the AWS CLI), jq.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/serve-for-scripts.sh

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

# A session as a user runs it: create from a JSON file, read, update, list in pages, tag, delete.
cp create-pipeline --cli-input-json file://scripts/testdata/pipeline.json >"$work/created.json"
jq -e '.pipeline.version == 1 and .pipeline.pipelineType == "V1" and .pipeline.executionMode == "SUPERSEDED"
       and .pipeline.stages[1].actions[0].runOrder == 1 and .pipeline.stages[1].actions[0].configuration == {}
       and .tags == [{"key": "team", "value": "release"}]' "$work/created.json" >/dev/null || fail "create-pipeline answered $(cat "$work/created.json")"
expect_error InvalidStructureException "A pipeline with the name 'cli-demo' already exists in account '000000000000'" -- create-pipeline --cli-input-json file://scripts/testdata/pipeline.json

cp get-pipeline --name cli-demo >"$work/got.json"
jq -e '.metadata.pipelineArn == "arn:aws:codepipeline:us-east-1:000000000000:cli-demo" and .pipeline.version == 1' "$work/got.json" >/dev/null || fail "get-pipeline answered $(cat "$work/got.json")"

jq '{pipeline: (.pipeline | .stages[1].actions[0].name = "Sign-off")}' "$work/got.json" >"$work/update.json"
cp update-pipeline --cli-input-json "file://$work/update.json" | jq -e '.pipeline.version == 2' >/dev/null || fail "update-pipeline did not make version 2"
cp get-pipeline --name cli-demo --pipeline-version 1 | jq -e '.pipeline.stages[1].actions[0].name == "Approve"' >/dev/null || fail "version 1 is not readable after the update"
expect_error PipelineVersionNotFoundException "version 3" -- get-pipeline --name cli-demo --pipeline-version 3
expect_error PipelineNotFoundException "Account '000000000000' does not have a pipeline with name 'nope'" -- get-pipeline --name nope

for n in 1 2 3 4; do
  jq --arg n "cli-page-$n" '.pipeline.name = $n | del(.tags)' scripts/testdata/pipeline.json >"$work/p$n.json"
  cp create-pipeline --cli-input-json "file://$work/p$n.json" >/dev/null
done
page=$(cp list-pipelines --max-items 2 --page-size 2)
[[ $(jq '.pipelines | length' <<<"$page") == 2 ]] || fail "first page: $page"
token=$(jq -r '.NextToken' <<<"$page")
rest=$(cp list-pipelines --starting-token "$token")
[[ $(jq '.pipelines | length' <<<"$rest") == 3 ]] || fail "rest after the token: $rest"
[[ $(cp list-pipelines | jq '[.pipelines[].name] | join(",")' -r) == "cli-demo,cli-page-1,cli-page-2,cli-page-3,cli-page-4" ]] || fail "list-pipelines order"

arn=arn:aws:codepipeline:us-east-1:000000000000:cli-demo
cp tag-resource --resource-arn "$arn" --tags key=stage,value=prod
cp untag-resource --resource-arn "$arn" --tag-keys team
[[ $(cp list-tags-for-resource --resource-arn "$arn" | jq -c '.tags') == '[{"key":"stage","value":"prod"}]' ]] || fail "tags after tag and untag"
expect_error InvalidTagsException "'aws:'" -- tag-resource --resource-arn "$arn" --tags key=aws:x,value=y

cp delete-pipeline --name cli-demo
cp delete-pipeline --name cli-demo
expect_error PipelineNotFoundException "cli-demo" -- get-pipeline --name cli-demo
expect_error ValidationException "Value 'bad name!' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern" -- get-pipeline --name 'bad name!'
# Executions: CreatePipeline started one; its S3 source bucket does not exist, so it failed naming it.
id=$(cp start-pipeline-execution --name cli-page-1 --client-request-token smoke-1 | jq -r .pipelineExecutionId)
[[ $(cp start-pipeline-execution --name cli-page-1 --client-request-token smoke-1 | jq -r .pipelineExecutionId) == "$id" ]] || fail "clientRequestToken is not idempotent"
cp list-pipeline-executions --pipeline-name cli-page-1 | jq -e --arg id "$id" '(.pipelineExecutionSummaries | length) == 2
  and .pipelineExecutionSummaries[0].pipelineExecutionId == $id and .pipelineExecutionSummaries[1].trigger.triggerType == "CreatePipeline"' >/dev/null || fail "list-pipeline-executions"
# wait_status PIPELINE ID STATUS: the execution reaches STATUS within ten seconds.
wait_status() {
  for _ in $(seq 100); do
    [[ $(cp get-pipeline-execution --pipeline-name "$1" --pipeline-execution-id "$2" | jq -r .pipelineExecution.status) == "$3" ]] && return 0
    sleep 0.1
  done
  fail "execution $2 of $1 did not reach $3: $(cp list-action-executions --pipeline-name "$1")"
}
wait_status cli-page-1 "$id" Failed
cp get-pipeline-state --name cli-page-1 | jq -e '.stageStates[0].actionStates[0].latestExecution.errorDetails.message | contains("cli-demo-source does not exist")' >/dev/null || fail "get-pipeline-state"

# The built-in S3 endpoint on the same port: a versioned source bucket, an upload, a run that fetches it.
s3() { aws --endpoint-url "http://127.0.0.1:$port" s3api "$@"; }
s3 create-bucket --bucket cli-demo-source >/dev/null
s3 put-bucket-versioning --bucket cli-demo-source --versioning-configuration Status=Enabled
printf 'PK\005\006%018d' 0 >"$work/app.zip"
version=$(s3 put-object --bucket cli-demo-source --key app.zip --body "$work/app.zip" | jq -r .VersionId)
s3 list-object-versions --bucket cli-demo-source | jq -e --arg v "$version" '.Versions[0].VersionId == $v' >/dev/null || fail "list-object-versions"
id=$(cp start-pipeline-execution --name cli-page-1 | jq -r .pipelineExecutionId)
for _ in $(seq 100); do
  state=$(cp get-pipeline-state --name cli-page-1)
  [[ $(jq -r '.stageStates[1].latestExecution.status' <<<"$state") == InProgress ]] && break
  sleep 0.1
done
jq -e --arg v "$version" '.stageStates[0].actionStates[0].currentRevision.revisionId == $v' <<<"$state" >/dev/null || fail "source revision after a run: $state"
cp put-action-revision --pipeline-name cli-page-1 --stage-name Source --action-name Source \
  --action-revision "revisionId=$version,revisionChangeId=x,created=2026-01-01T00:00:00Z" |
  jq -e --arg id "$id" '.newRevision == false and .pipelineExecutionId == $id' >/dev/null || fail "put-action-revision of the revision just run"
cp put-action-revision --pipeline-name cli-page-1 --stage-name Source --action-name Source \
  --action-revision "revisionId=other,revisionChangeId=x,created=2026-01-01T00:00:00Z" | jq -e '.newRevision == true' >/dev/null || fail "put-action-revision of a new revision"

# V2 release safety: a stage with an entry condition (a VariableCheck rule on a pipeline variable)
# and an onFailure RETRY, run by a custom action whose job worker is this script; then rollbacks.
cp create-custom-action-type --category Build --provider SmokeWorker --action-version 1 \
  --input-artifact-details minimumCount=0,maximumCount=1 --output-artifact-details minimumCount=0,maximumCount=0 >/dev/null
worker_type=category=Build,owner=Custom,provider=SmokeWorker,version=1
jq '{pipeline: {name: "cli-v2", roleArn: .pipeline.roleArn, artifactStore: .pipeline.artifactStore, pipelineType: "V2",
  variables: [{name: "Ready", defaultValue: "no"}],
  stages: [.pipeline.stages[0], {name: "Build",
    beforeEntry: {conditions: [{result: "FAIL", rules: [{name: "IsReady",
      ruleTypeId: {category: "Rule", owner: "AWS", provider: "VariableCheck", version: "1"},
      configuration: {Variable: "#{variables.Ready}", Operator: "EQ", Value: "yes"}}]}]},
    onFailure: {result: "RETRY", retryConfiguration: {retryMode: "FAILED_ACTIONS"}},
    actions: [{name: "Work", actionTypeId: {category: "Build", owner: "Custom", provider: "SmokeWorker", version: "1"},
      inputArtifacts: [{name: "SourceOutput"}]}]}]}}' scripts/testdata/pipeline.json >"$work/v2.json"
cp create-pipeline --cli-input-json "file://$work/v2.json" >/dev/null
# The execution CreatePipeline started has Ready=no: the Build stage's entry condition fails it.
closed=$(cp list-pipeline-executions --pipeline-name cli-v2 | jq -r '.pipelineExecutionSummaries[0].pipelineExecutionId')
wait_status cli-v2 "$closed" Failed
cp get-pipeline-state --name cli-v2 | jq -e '.stageStates[1] | .latestExecution.status == "Failed"
  and .beforeEntryConditionState.latestExecution.status == "Failed"
  and .beforeEntryConditionState.conditionStates[0].ruleStates[0].ruleName == "IsReady"
  and .beforeEntryConditionState.conditionStates[0].ruleStates[0].latestExecution.status == "Failed"
  and (.actionStates[0].latestExecution == null)' >/dev/null || fail "get-pipeline-state after the entry condition failed: $(cp get-pipeline-state --name cli-v2)"
cp list-rule-executions --pipeline-name cli-v2 --filter "pipelineExecutionId=$closed" | jq -e --arg id "$closed" '.ruleExecutionDetails
  | length == 1 and .[0].pipelineExecutionId == $id and .[0].stageName == "Build" and .[0].ruleName == "IsReady" and .[0].status == "Failed"
  and .[0].input.resolvedConfiguration.Variable == "no" and (.[0].output.executionResult.externalExecutionSummary | contains("\"no\""))' >/dev/null ||
  fail "list-rule-executions: $(cp list-rule-executions --pipeline-name cli-v2)"
expect_error PipelineNotFoundException "nope" -- list-rule-executions --pipeline-name nope

# poll_job: the next job of the SmokeWorker type, acknowledged; prints its id.
poll_job() {
  local jobs
  for _ in $(seq 100); do
    jobs=$(cp poll-for-jobs --action-type-id "$worker_type" --max-batch-size 1)
    if [[ $(jq '.jobs | length' <<<"$jobs") == 1 ]]; then
      cp acknowledge-job --job-id "$(jq -r '.jobs[0].id' <<<"$jobs")" --nonce "$(jq -r '.jobs[0].nonce' <<<"$jobs")" | jq -e '.status == "InProgress"' >/dev/null || fail "acknowledge-job"
      jq -r '.jobs[0].id' <<<"$jobs"
      return 0
    fi
    sleep 0.1
  done
  fail "no job of SmokeWorker came: $(cp get-pipeline-state --name cli-v2)"
}
# With Ready=yes the stage runs; its job fails once, and onFailure RETRY runs the stage again.
first=$(cp start-pipeline-execution --name cli-v2 --variables name=Ready,value=yes | jq -r .pipelineExecutionId)
cp put-job-failure-result --job-id "$(poll_job)" --failure-details type=JobFailed,message="flaky on the first try"
cp put-job-success-result --job-id "$(poll_job)"
wait_status cli-v2 "$first" Succeeded
cp get-pipeline-state --name cli-v2 | jq -e --arg id "$first" '.stageStates[1] | .latestExecution.pipelineExecutionId == $id
  and .retryStageMetadata.autoStageRetryAttempt == 1 and .retryStageMetadata.latestRetryTrigger == "AutomatedStageRetry"
  and .beforeEntryConditionState.latestExecution.status == "Succeeded"' >/dev/null ||
  fail "get-pipeline-state after the automatic retry: $(cp get-pipeline-state --name cli-v2)"
[[ $(cp list-action-executions --pipeline-name cli-v2 --filter "pipelineExecutionId=$first" |
  jq -c '[.actionExecutionDetails[] | select(.stageName == "Build") | .status] | sort') == '["Failed","Succeeded"]' ]] ||
  fail "the Work action's runs in $first: $(cp list-action-executions --pipeline-name cli-v2)"

# A second execution succeeds; then the Build stage is rolled back to the first.
second=$(cp start-pipeline-execution --name cli-v2 --variables name=Ready,value=yes | jq -r .pipelineExecutionId)
cp put-job-success-result --job-id "$(poll_job)"
wait_status cli-v2 "$second" Succeeded
rollback=$(cp rollback-stage --pipeline-name cli-v2 --stage-name Build --target-pipeline-execution-id "$first" | jq -r .pipelineExecutionId)
cp put-job-success-result --job-id "$(poll_job)"
wait_status cli-v2 "$rollback" Succeeded
cp get-pipeline-execution --pipeline-name cli-v2 --pipeline-execution-id "$rollback" | jq -e --arg first "$first" '.pipelineExecution
  | .executionType == "ROLLBACK" and .rollbackMetadata.rollbackTargetPipelineExecutionId == $first
  and .trigger.triggerType == "ManualRollback"' >/dev/null ||
  fail "get-pipeline-execution of the rollback: $(cp get-pipeline-execution --pipeline-name cli-v2 --pipeline-execution-id "$rollback")"
cp list-pipeline-executions --pipeline-name cli-v2 --max-items 1 | jq -e --arg id "$rollback" '.pipelineExecutionSummaries[0]
  | .pipelineExecutionId == $id and .executionType == "ROLLBACK" and .trigger.triggerType == "ManualRollback"' >/dev/null ||
  fail "list-pipeline-executions after the rollback: $(cp list-pipeline-executions --pipeline-name cli-v2)"
expect_error UnableToRollbackStageException "Source" -- rollback-stage --pipeline-name cli-v2 --stage-name Source --target-pipeline-execution-id "$first"
expect_error PipelineExecutionNotFoundException "00000000-0000-4000-8000-000000000000" -- rollback-stage --pipeline-name cli-v2 --stage-name Build --target-pipeline-execution-id 00000000-0000-4000-8000-000000000000

# Webhooks: put-webhook (GITHUB_HMAC, filtered on the source's branch) on a pipeline with a GitHub
# source; a push delivery signed as GitHub signs it (HMAC-SHA256 of the body, computed by openssl)
# starts a run with trigger Webhook; a wrongly signed one is refused with 401 and starts nothing.
jq '{pipeline: (.pipeline | .name = "cli-hook" | .stages[0].actions[0] = {name: "Source",
  actionTypeId: {category: "Source", owner: "ThirdParty", provider: "GitHub", version: "1"},
  configuration: {Owner: "acme", Repo: "app", Branch: "main", OAuthToken: "token", PollForSourceChanges: "false"},
  outputArtifacts: [{name: "SourceOutput"}]})}' scripts/testdata/pipeline.json >"$work/hook-pipeline.json"
cp create-pipeline --cli-input-json "file://$work/hook-pipeline.json" >/dev/null
hook_secret=smoke-webhook-secret
jq -n --arg secret "$hook_secret" '{webhook: {name: "cli-hook-push", targetPipeline: "cli-hook", targetAction: "Source",
  filters: [{jsonPath: "$.ref", matchEquals: "refs/heads/{Branch}"}],
  authentication: "GITHUB_HMAC", authenticationConfiguration: {SecretToken: $secret}}}' >"$work/webhook.json"
hook_url=$(cp put-webhook --cli-input-json "file://$work/webhook.json" | jq -r .webhook.url)
[[ $hook_url == "$endpoint/_sluice/webhooks/trigger?t="* ]] || fail "put-webhook answered the URL $hook_url"
payload='{"ref":"refs/heads/main","after":"4b1d4b1d4b1d4b1d4b1d4b1d4b1d4b1d4b1d4b1d","repository":{"full_name":"acme/app"}}'
# deliver KEY: POST the payload signed with KEY, as GitHub does; prints the HTTP status.
deliver() {
  local sig
  sig=$(printf '%s' "$payload" | openssl dgst -sha256 -hmac "$1" -r | cut -d' ' -f1)
  curl -s -o "$work/delivery.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' \
    -H "X-Hub-Signature-256: sha256=$sig" --data-binary "$payload" "$hook_url"
}
[[ $(deliver not-the-secret) == 401 ]] || fail "a wrongly signed delivery: $(cat "$work/delivery.json")"
[[ $(deliver "$hook_secret") == 200 ]] || fail "a signed delivery: $(cat "$work/delivery.json")"
hook_arn=arn:aws:codepipeline:us-east-1:000000000000:webhook:cli-hook-push
webhook_runs() {
  cp list-pipeline-executions --pipeline-name cli-hook | jq --arg arn "$hook_arn" \
    '[.pipelineExecutionSummaries[] | select(.trigger.triggerType == "Webhook" and .trigger.triggerDetail == $arn)] | length'
}
for _ in $(seq 100); do
  [[ $(webhook_runs) == 0 ]] || break
  sleep 0.1
done
# Recorded deliveries start runs in order: had the refused one (sent first) been recorded, its run would be here too.
[[ $(webhook_runs) == 1 ]] || fail "want one run started by the webhook: $(cp list-pipeline-executions --pipeline-name cli-hook)"
cp list-webhooks | jq -e '.webhooks[] | select(.definition.name == "cli-hook-push") | .lastTriggered != null
  and .definition.authenticationConfiguration.SecretToken == "****"' >/dev/null || fail "list-webhooks after a delivery: $(cp list-webhooks)"
echo "smoke: AWS CLI session passed"
