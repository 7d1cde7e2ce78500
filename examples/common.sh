# Shared by the examples' run.sh scripts: the AWS CLI pointed at Sluice, and waiting for runs.
# SLUICE_ENDPOINT is the server (default http://127.0.0.1:4566).
set -euo pipefail
endpoint="${SLUICE_ENDPOINT:-http://127.0.0.1:4566}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-sluice}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-sluice}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" AWS_PAGER=""
aws() { command aws --endpoint-url "$endpoint" "$@"; }

# latest_execution PIPELINE prints the id of the pipeline's newest execution.
latest_execution() {
  aws codepipeline list-pipeline-executions --pipeline-name "$1" --max-items 1 \
    --query 'pipelineExecutionSummaries[0].pipelineExecutionId' --output text
}

# wait_for_execution PIPELINE ID waits for the execution to end, shows its actions and fails
# unless it Succeeded.
wait_for_execution() {
  local status
  for _ in $(seq 1 180); do
    status="$(aws codepipeline get-pipeline-execution --pipeline-name "$1" --pipeline-execution-id "$2" --query pipelineExecution.status --output text)"
    [ "$status" = InProgress ] || break
    sleep 1
  done
  aws codepipeline list-action-executions --pipeline-name "$1" --filter "pipelineExecutionId=$2" \
    --query 'reverse(actionExecutionDetails)[].[stageName, actionName, status]' --output text
  echo "execution $2 of $1: $status"
  [ "$status" = Succeeded ]
}
