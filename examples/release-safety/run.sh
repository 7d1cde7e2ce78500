#!/usr/bin/env bash
# Release safety with stage conditions, against a running Sluice. The Deploy stage of
# pipeline.json lets only an approved release in (its beforeEntry condition checks the pipeline
# variable ReleaseApproved), deploys it to a bucket, verifies it, and when the verification fails
# rolls itself back to the last release that passed (its onFailure condition, ROLLBACK).
# Three releases: v1 is good, v2 is broken, v3 is not approved.
#   SLUICE_ENDPOINT   the server (default http://127.0.0.1:4566)
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/../common.sh"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
pipeline=release-safety site=sluice-example-release-site

# expect WHAT GOT WANT stops the example unless GOT is WANT.
expect() { [ "$2" = "$3" ] || { echo "release-safety: $1 is '$2', want '$3'" >&2; exit 1; }; }
status_of() { aws codepipeline get-pipeline-execution --pipeline-name $pipeline --pipeline-execution-id "$1" --query pipelineExecution.status --output text; }
# live_release prints which release the deployed site says it runs.
live_release() { aws s3 cp "s3://$site/index.html" - | grep -o 'release v[0-9]*'; }

# release VERSION APPROVED [broken] uploads app/ as release VERSION (a broken one without its
# stylesheet, which the Verify action checks for), starts an execution of exactly that upload
# with ReleaseApproved=APPROVED, and prints the execution's id.
release() {
  mkdir -p "$work/$1"
  sed "s/@VERSION@/$1/g" "$here/app/index.html" >"$work/$1/index.html"
  [ "${3:-}" = broken ] || cp "$here/app/style.css" "$work/$1/"
  (cd "$work/$1" && python3 -m zipfile -c "$work/$1.zip" *)
  local version
  version="$(aws s3api put-object --bucket sluice-example-source --key release-safety.zip --body "$work/$1.zip" --query VersionId --output text)"
  aws codepipeline start-pipeline-execution --name $pipeline --variables "name=ReleaseApproved,value=$2" \
    --source-revisions "actionName=Source,revisionType=S3_OBJECT_VERSION_ID,revisionValue=$version" \
    --query pipelineExecutionId --output text
}

echo "== buckets: the versioned source bucket, and an empty site bucket"
aws s3api create-bucket --bucket sluice-example-source >/dev/null 2>&1 || true
aws s3api put-bucket-versioning --bucket sluice-example-source --versioning-configuration Status=Enabled
aws s3api create-bucket --bucket $site >/dev/null 2>&1 || true
aws s3 rm "s3://$site" --recursive >/dev/null

echo "== create the pipeline, and stop the execution that creating it starts (the releases below start their own)"
aws codepipeline delete-pipeline --name $pipeline 2>/dev/null || true
aws codepipeline create-pipeline --cli-input-json "file://$here/pipeline.json" --query pipeline.name --output text
first="$(latest_execution $pipeline)"
aws codepipeline stop-pipeline-execution --pipeline-name $pipeline --pipeline-execution-id "$first" --abandon >/dev/null 2>&1 || true
for _ in $(seq 1 60); do
  case "$(status_of "$first")" in InProgress | Stopping) sleep 1 ;; *) break ;; esac
done

echo "== release v1, approved: it enters Deploy, is deployed and passes Verify"
v1="$(release v1 yes)"
wait_for_execution $pipeline "$v1"
expect "the site's release" "$(live_release)" "release v1"
echo "the site says: $(live_release)"

echo "== release v2, approved but broken (it has no style.css): Verify fails after the deploy"
v2="$(release v2 yes broken)"
wait_for_execution $pipeline "$v2" || true
expect "the status of v2's execution" "$(status_of "$v2")" Failed
aws codepipeline list-action-executions --pipeline-name $pipeline --filter "pipelineExecutionId=$v2" \
  --query "actionExecutionDetails[?actionName=='Verify'].output.executionResult.externalExecutionSummary | [0]" --output text | sed -n 1p

echo "== the Deploy stage's onFailure condition started a rollback to v1, the last execution that succeeded in it"
rollback=None
for _ in $(seq 1 60); do
  rollback="$(aws codepipeline list-pipeline-executions --pipeline-name $pipeline \
    --query "pipelineExecutionSummaries[?executionType=='ROLLBACK' && trigger.triggerDetail=='$v2'] | [0].pipelineExecutionId" --output text)"
  [ "$rollback" != None ] && break
  sleep 1
done
[ "$rollback" != None ] || { echo "release-safety: no rollback execution started after $v2 failed" >&2; exit 1; }
wait_for_execution $pipeline "$rollback"
aws codepipeline list-pipeline-executions --pipeline-name $pipeline --max-items 3 --output table \
  --query 'pipelineExecutionSummaries[].{id: pipelineExecutionId, status: status, type: executionType, trigger: trigger.triggerType, rollbackTo: rollbackMetadata.rollbackTargetPipelineExecutionId}'
summary="$(aws codepipeline get-pipeline-execution --pipeline-name $pipeline --pipeline-execution-id "$rollback" \
  --query 'pipelineExecution.[executionType, trigger.triggerType, rollbackMetadata.rollbackTargetPipelineExecutionId]' --output text)"
expect "the rollback's type, trigger and target" "$summary" "$(printf 'ROLLBACK\tAutomatedRollback\t%s' "$v1")"
expect "the site's release after the rollback" "$(live_release)" "release v1"
echo "the site says: $(live_release) again"

echo "== release v3, not approved: the Deploy stage's entry condition fails the execution before any deploy"
v3="$(release v3 no)"
wait_for_execution $pipeline "$v3" || true
expect "the status of v3's execution" "$(status_of "$v3")" Failed
gate="$(aws codepipeline get-pipeline-state --name $pipeline \
  --query "stageStates[?stageName=='Deploy'] | [0].beforeEntryConditionState.latestExecution.[status, summary]" --output text)"
echo "the Deploy stage's entry condition: $gate"
expect "the entry condition's status" "$(echo "$gate" | cut -f1)" Failed
aws codepipeline list-rule-executions --pipeline-name $pipeline --filter "pipelineExecutionId=$v3" --output table \
  --query 'ruleExecutionDetails[].{stage: stageName, rule: ruleName, status: status, summary: output.executionResult.externalExecutionSummary}'
expect "the rule's status" "$(aws codepipeline list-rule-executions --pipeline-name $pipeline --filter "pipelineExecutionId=$v3" \
  --query 'ruleExecutionDetails[0].status' --output text)" Failed
expect "the site's release" "$(live_release)" "release v1"
echo "the site still says: $(live_release)"
