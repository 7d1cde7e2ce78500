#!/usr/bin/env bash
# The whole test suite, from a fresh clone: checks, unit and integration tests under the race
# detector (SQLite and PostgreSQL), fuzz seed corpora, and the AWS CLI smoke session.
set -euo pipefail
cd "$(dirname "$0")/.."

run() { echo "+ $*"; "$@"; }

# bubblewrap, which builds run in (`sluice serve --build-isolation sandbox`, the default): install
# it from Debian's packages when it is missing.
if ! command -v bwrap >/dev/null; then
  echo "+ installing bubblewrap from Debian's packages"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null
fi

# PostgreSQL for the store tests: use $SLUICE_TEST_POSTGRES if set, else the local server on
# 127.0.0.1:5432, starting it (or installing it from Debian's packages) when it is not running.
if [[ -z ${SLUICE_TEST_POSTGRES:-} ]]; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    if ! command -v pg_ctlcluster >/dev/null; then
      echo "+ installing PostgreSQL from Debian's packages"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    cluster=$(ls /etc/postgresql 2>/dev/null | head -1)
    [[ -n $cluster ]] && pg_ctlcluster --skip-systemctl-redirect "$cluster" main start || true
    for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
  fi
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    export SLUICE_TEST_POSTGRES="postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
  else
    echo "warning: PostgreSQL is not reachable on 127.0.0.1:5432; its tests will be skipped" >&2
  fi
fi
echo "SLUICE_TEST_POSTGRES=${SLUICE_TEST_POSTGRES:-}"

run test -z "$(gofmt -l $(git ls-files '*.go'))"
# go.mod and go.sum are what `go mod tidy` makes of the code (it prints the difference if not).
run go mod tidy -diff
run go vet ./...
run go tool staticcheck ./...
# The platforms users run Sluice on besides this one (Windows is not one: see the README).
for target in darwin/amd64 darwin/arm64 linux/arm64; do
  run env GOOS="${target%/*}" GOARCH="${target#*/}" go build -o /dev/null ./...
done
run go test -race -count=1 ./...
run scripts/smoke-cli.sh
run scripts/js-client.sh
run scripts/conformance.sh
run go run ./bench -short -out "$(mktemp)"
run scripts/examples.sh
run scripts/examples.sh --auth
run scripts/quickstart.sh
run scripts/quickstart.sh --auth
