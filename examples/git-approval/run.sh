#!/usr/bin/env bash
# git push → CodeBuild buildspec → manual approval → S3 deploy, against a running Sluice:
# the app is pushed to Sluice's hosted git, the push starts the pipeline, a person approves.
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/../common.sh"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT

echo "== the release bucket and the pipeline"
aws s3api create-bucket --bucket sluice-example-releases >/dev/null 2>&1 || true
aws codepipeline delete-pipeline --name git-approval 2>/dev/null || true
aws codepipeline create-pipeline --cli-input-json "file://$here/pipeline.json" --query pipeline.name --output text

echo "== push the app to $endpoint/v1/repos/example-app"
cp -R "$here/app/." "$work/"
git -C "$work" init -q -b main
git -C "$work" -c user.name=Example -c user.email=example@sluice.invalid add -A
git -C "$work" -c user.name=Example -c user.email=example@sluice.invalid commit -q -m "Release $(cat "$here/app/VERSION")"
commit="$(git -C "$work" rev-parse HEAD)"
git -C "$work" push -q --force "$endpoint/v1/repos/example-app" HEAD:refs/heads/main

echo "== approve what waits for approval until the execution of $commit succeeds"
status=""
for _ in $(seq 1 180); do
  id="$(aws codepipeline list-pipeline-executions --pipeline-name git-approval \
    --query "pipelineExecutionSummaries[?sourceRevisions[?revisionId=='$commit']] | [0].pipelineExecutionId" --output text)"
  if [ "$id" != None ]; then
    status="$(aws codepipeline get-pipeline-execution --pipeline-name git-approval --pipeline-execution-id "$id" --query pipelineExecution.status --output text)"
    [ "$status" = InProgress ] || break
  fi
  token="$(aws codepipeline get-pipeline-state --name git-approval \
    --query "stageStates[?stageName=='Approve'].actionStates[0].latestExecution.token | [0]" --output text)"
  if [ "$token" != None ]; then
    aws codepipeline get-pipeline-state --name git-approval --query "stageStates[].[stageName, latestExecution.status]" --output text
    echo "approving"
    aws codepipeline put-approval-result --pipeline-name git-approval --stage-name Approve --action-name Approve \
      --token "$token" --result "summary=Looks good,status=Approved" >/dev/null
  fi
  sleep 1
done
wait_for_execution git-approval "$id"

echo "== the deployed release"
aws s3 cp "s3://sluice-example-releases/$(cat "$here/app/VERSION")/release.txt" -
