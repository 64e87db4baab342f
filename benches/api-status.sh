#!/usr/bin/env bash
# Speed of the REST API (issue 5): wrk on `GET /v1/migrations/{id}/status` of a release
# build with 100 migrations stored. Target on 2 cores: >= 20,000 requests/s, p99 < 10 ms.
# Needs wrk (Debian: apt-get install wrk) and curl. Run: bash benches/api-status.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 2; }
cargo build --release -q
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
mkdir -p "$dir/runbooks"
printf 'version: 1\nname: quick\nsteps:\n  - id: one\n    run: "true"\n' > "$dir/runbooks/quick.yaml"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
target/release/sensei serve --listen "127.0.0.1:$port" --state-dir "$dir/state" \
  --runbooks "$dir/runbooks" > "$dir/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
id=""
for _ in $(seq 100); do
  id=$(curl -sf -X POST "$base/v1/migrations" -H 'content-type: application/json' \
    -d '{"runbook":"quick","params":{}}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
done
echo "100 migrations stored; wrk on $base/v1/migrations/$id/status"
wrk -t2 -c32 -d10s --latency "$base/v1/migrations/$id/status" | grep -E "Requests/sec|50%|99%"
