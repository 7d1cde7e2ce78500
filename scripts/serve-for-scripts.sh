# Sourced by the scripts that talk to a real server: builds sluice, starts `sluice serve` on a
# free loopback port with a fresh data directory, and stops it on exit. Sets work (a temporary
# directory), port, endpoint and sluice (the binary); the server logs to $work/server.log.
work=$(mktemp -d)
sluice="$work/sluice"
go build -o "$sluice" ./cmd/sluice
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
endpoint="http://127.0.0.1:$port"
"$sluice" serve --listen "127.0.0.1:$port" --data "$work/data" "$@" >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  curl -fs "$endpoint/_sluice/health" >/dev/null && break
  sleep 0.1
done
