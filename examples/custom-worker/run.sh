#!/usr/bin/env bash
# A custom action type served by `sluice worker`, against a running Sluice. The worker polls for
# the action's jobs and runs uppercase.sh for each.
#   SLUICE_BIN   the sluice binary (default: sluice on the PATH)
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/../common.sh"
work="$(mktemp -d)"
bin="${SLUICE_BIN:-sluice}"

echo "== the custom action type and its worker"
aws codepipeline create-custom-action-type --cli-input-json "file://$here/action-type.json" >/dev/null 2>&1 || true
"$bin" worker --endpoint "$endpoint" --category Build --provider Uppercase --poll-interval 200ms -- "$here/uppercase.sh" 2>"$work/worker.log" &
worker=$!
trap 'kill $worker 2>/dev/null; wait $worker 2>/dev/null; rm -rf "$work"' EXIT

echo "== upload the source"
aws s3api create-bucket --bucket sluice-example-source >/dev/null 2>&1 || true
aws s3api put-bucket-versioning --bucket sluice-example-source --versioning-configuration Status=Enabled
(cd "$here/app" && python3 -m zipfile -c "$work/words.zip" words.txt)
aws s3api put-object --bucket sluice-example-source --key words.zip --body "$work/words.zip" --query VersionId --output text

echo "== create the pipeline"
aws codepipeline delete-pipeline --name custom-worker 2>/dev/null || true
aws codepipeline create-pipeline --cli-input-json "file://$here/pipeline.json" --query pipeline.name --output text
id="$(latest_execution custom-worker)"
wait_for_execution custom-worker "$id" || { cat "$work/worker.log"; exit 1; }

echo "== the worker's output artifact"
location="$(aws codepipeline list-action-executions --pipeline-name custom-worker --filter "pipelineExecutionId=$id" \
  --query "actionExecutionDetails[?actionName=='Uppercase'].output.outputArtifacts[0].s3location | [0].[bucket, key]" --output text)"
aws s3 cp "s3://$(echo "$location" | cut -f1)/$(echo "$location" | cut -f2)" "$work/loud.zip" >/dev/null
python3 -m zipfile -e "$work/loud.zip" "$work/loud"
cat "$work/loud/WORDS.TXT"
