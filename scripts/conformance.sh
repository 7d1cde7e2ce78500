#!/usr/bin/env bash
# Conformance corpus: replays every example the installed AWS CLI ships for CodePipeline
# (awscli/examples/codepipeline/*.rst) against a fresh Sluice server, through the AWS CLI, and
# compares each answer with the output AWS shows (scripts/conformance/replay.py says how).
# Prints PASS or FAIL per example with the differences (path, AWS's value, Sluice's), then
# "N passed, M failed"; exits non-zero if any failed. Arguments go to replay.py, e.g.
# `scripts/conformance.sh --only get-pipeline -v` (-v shows each command and the exceptions used).
# Needs: go, aws (the AWS CLI v1, whose Python package holds the examples), git, python3.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 scripts/conformance/replay.py --self-test

# The account most examples show. CodeDeploy actions become jobs, which the replay completes as
# CodeDeploy would: the examples show deployments that succeeded, failed or are in progress.
. scripts/serve-for-scripts.sh --account-id 111111111111 --worker-providers CodeDeploy

python3 scripts/conformance/replay.py --endpoint "$endpoint" --account-id 111111111111 --sluice "$sluice" "$@"
