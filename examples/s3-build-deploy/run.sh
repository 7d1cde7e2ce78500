#!/usr/bin/env bash
# Runs the S3 source → CodeBuild buildspec → S3 deploy pipeline against a running Sluice.
#   SLUICE_ENDPOINT   the server (default http://127.0.0.1:4566)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
endpoint="${SLUICE_ENDPOINT:-http://127.0.0.1:4566}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-sluice}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-sluice}" AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
aws() { command aws --endpoint-url "$endpoint" "$@"; }
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT

echo "== buckets: a versioned source bucket and the site bucket"
aws s3api create-bucket --bucket sluice-example-source >/dev/null 2>&1 || true
aws s3api put-bucket-versioning --bucket sluice-example-source --versioning-configuration Status=Enabled
aws s3api create-bucket --bucket sluice-example-site >/dev/null 2>&1 || true

echo "== upload the source"
(cd "$here/app" && python3 -m zipfile -c "$work/app.zip" buildspec.yml site)
aws s3api put-object --bucket sluice-example-source --key app.zip --body "$work/app.zip" --query VersionId --output text

echo "== create the pipeline (it starts its first execution)"
aws codepipeline delete-pipeline --name s3-build-deploy 2>/dev/null || true
aws codepipeline create-pipeline --cli-input-json "file://$here/pipeline.json" --query pipeline.name --output text
sleep 1
id="$(aws codepipeline list-pipeline-executions --pipeline-name s3-build-deploy --query 'pipelineExecutionSummaries[0].pipelineExecutionId' --output text)"

echo "== wait for execution $id"
for _ in $(seq 1 120); do
  status="$(aws codepipeline get-pipeline-execution --pipeline-name s3-build-deploy --pipeline-execution-id "$id" --query pipelineExecution.status --output text)"
  [ "$status" = InProgress ] || break
  sleep 1
done
aws codepipeline list-action-executions --pipeline-name s3-build-deploy --filter "pipelineExecutionId=$id" \
  --query 'actionExecutionDetails[].[stageName, status, output.executionResult.externalExecutionUrl]' --output text
echo "execution $id: $status"
[ "$status" = Succeeded ] || exit 1

echo "== the deployed site"
stamp="$(aws codepipeline list-action-executions --pipeline-name s3-build-deploy --filter "pipelineExecutionId=$id" \
  --query "actionExecutionDetails[?stageName=='Build'].output.outputVariables.BUILD_STAMP | [0]" --output text)"
aws s3 ls "s3://sluice-example-site/$stamp/"
aws s3 cp "s3://sluice-example-site/$stamp/index.html" - | grep -q "Hello from Sluice"
echo "s3://sluice-example-site/$stamp/index.html says Hello from Sluice"
