# Shared by the examples' run.sh scripts: the AWS CLI pointed at Sluice, and waiting for runs.
# SLUICE_ENDPOINT is the server (default http://127.0.0.1:4566).
set -euo pipefail
endpoint="${SLUICE_ENDPOINT:-http://127.0.0.1:4566}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-sluice}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-sluice}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" AWS_PAGER=""
aws() { command aws --endpoint-url "$endpoint" "$@"; }
# A server with authentication on asks git for credentials: git presents the same access key,
# its id as user name and its secret as password, as for CodeCommit's HTTPS Git credentials.
export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=credential.helper
export GIT_CONFIG_VALUE_0='!f() { test "$1" = get && echo "username=$AWS_ACCESS_KEY_ID" && echo "password=$AWS_SECRET_ACCESS_KEY"; }; f'

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
