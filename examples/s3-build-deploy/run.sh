#!/usr/bin/env bash
# Runs the S3 source → CodeBuild buildspec → S3 deploy pipeline against a running Sluice.
#   SLUICE_ENDPOINT   the server (default http://127.0.0.1:4566)
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/../common.sh"
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
id="$(latest_execution s3-build-deploy)"
echo "== wait for execution $id"
wait_for_execution s3-build-deploy "$id"

echo "== the deployed site"
stamp="$(aws codepipeline list-action-executions --pipeline-name s3-build-deploy --filter "pipelineExecutionId=$id" \
  --query "actionExecutionDetails[?stageName=='Build'].output.outputVariables.BUILD_STAMP | [0]" --output text)"
aws s3 ls "s3://sluice-example-site/$stamp/"
aws s3 cp "s3://sluice-example-site/$stamp/index.html" - | grep -q "Hello from Sluice"
echo "s3://sluice-example-site/$stamp/index.html says Hello from Sluice"
