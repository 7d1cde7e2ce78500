#!/usr/bin/env bash
# The fault tests' long form: more kill points than the test command runs (SLUICE_FAULT_ROUNDS,
# default 5: five times the executions and SIGKILLs), and a run that terminates the server's
# PostgreSQL connections again and again, on a database of its own. The test command runs the
# same tests in their short form (one round, no backend termination).
#   scripts/faults.sh [ROUNDS]
# Needs: go, git, bwrap, and PostgreSQL at $SLUICE_TEST_POSTGRES (default: the local server's
# test database, as scripts/test.sh starts it) with the right to create databases.
set -euo pipefail
cd "$(dirname "$0")/.."
export SLUICE_FAULT_ROUNDS="${1:-5}"
export SLUICE_TEST_POSTGRES="${SLUICE_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
echo "+ SLUICE_FAULT_ROUNDS=$SLUICE_FAULT_ROUNDS"
go test -race -count=1 -timeout 60m -v \
  -run 'TestRunsSurviveSIGKILL|TestAcknowledgedWritesSurviveRestartAndKill|TestBuildsDieWithTheServer|TestConditionsSurviveSIGKILL|TestStartsSurviveSIGKILL' ./cmd/sluice/
go test -race -count=1 -v -run 'TestCreatePipelineFaultStoresNothing' ./internal/api/
