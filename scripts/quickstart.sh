#!/usr/bin/env bash
# Runs the README as a newcomer would: in a fresh copy of the repository, from its root, the
# README's serve command verbatim (default listen address and ./sluice-data), then the README's
# first AWS CLI session and its quickstart script, to Succeeded. The commands are read from the
# README itself, so a README command that stops working fails the test command.
# With --auth, the same with authentication on: the server and the session of the README's
# section on running the quickstart with authentication, verbatim.
# Needs: go, aws (the AWS CLI), git, python3, curl; port 4566 free.
set -euo pipefail
cd "$(dirname "$0")/.."
auth="${1:-}"

# block HEADING: the first ```sh block after the line HEADING, without comments.
block() {
  awk -v heading="$1" '
    $0 == heading { found = 1; next }
    found && /^```sh$/ { inside = 1; next }
    inside && /^```$/ { exit }
    inside { sub(/[ \t]+#.*$/, ""); print }' README.md
}
serve_cmd=$(block '## The two commands' | head -1)
first_session=$(block 'Then, with any credentials:')
quickstart=$(block '## Quickstart: a pipeline that builds and deploys, in a minute')
if [[ $auth == --auth ]]; then
  serve_cmd=$(block 'written here). The server, with one user in the default account:')
  # The session exports the user's key, which the quickstart signs with: one shell runs both.
  first_session=$(block "Then, in another terminal, with that user's key:")
  quickstart=""
fi
[[ $serve_cmd == *"sluice serve"* && -n $first_session && ($quickstart == ./* || $auth == --auth) ]] ||
  { echo "quickstart: cannot find the README's commands (serve: '$serve_cmd', quickstart: '$quickstart')" >&2; exit 1; }

if curl -fs http://127.0.0.1:4566/_sluice/health >/dev/null 2>&1 || ! python3 -c 'import socket; socket.create_server(("127.0.0.1", 4566)).close()' 2>/dev/null; then
  echo "quickstart: port 4566, the README's default, is taken; stop whatever listens there" >&2
  exit 1
fi

# A fresh copy: the files a clone of this tree would have (tracked and new, not ignored ones).
copy=$(mktemp -d)
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  [[ -e $f ]] && printf '%s\0' "$f"
done | tar --null -T - -cf - | tar -xf - -C "$copy"

cd "$copy"
echo "+ (in a fresh copy) $serve_cmd"
setsid bash -c "$serve_cmd" >server.log 2>&1 &
server=$!
trap 'kill -TERM -- -$server 2>/dev/null; wait $server 2>/dev/null || true; rm -rf "$copy"' EXIT
for _ in $(seq 600); do
  curl -fs http://127.0.0.1:4566/_sluice/health >/dev/null && break
  kill -0 $server 2>/dev/null || { echo "quickstart: the server exited:" >&2; cat server.log >&2; exit 1; }
  sleep 0.5
done

fail() { echo "quickstart: $*; server log:" >&2; cat server.log >&2; exit 1; }
echo "+ $first_session"
if [[ $auth == --auth ]]; then
  bash -euo pipefail -c "$first_session" | tee quickstart.log || fail "the README's session with authentication failed"
else
  bash -euo pipefail -c "$first_session" || fail "the README's first AWS CLI session failed"
  echo "+ $quickstart"
  bash -c "$quickstart" | tee quickstart.log || fail "the quickstart failed"
fi
grep -q ': Succeeded$' quickstart.log || fail "the quickstart did not end in Succeeded"
[[ -f sluice-data/sluice.db ]] || fail "the server did not keep its data in ./sluice-data"
