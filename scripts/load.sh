#!/usr/bin/env bash
# A bounded load run against the demo server on 127.0.0.1, in stateless and
# Redis modes: a login / me / count mix from LOAD_USERS concurrent users for
# LOAD_SECONDS, then the demo's RSS before and after. Not part of the test
# command; figures go to docs/src/security.md and docs/src/performance.md.
#
#   scripts/load.sh                     # stateless and redis://127.0.0.1:6379
#   LOAD_SECONDS=30 LOAD_USERS=64 scripts/load.sh
set -euo pipefail
cd "$(dirname "$0")/.."

export LOAD_SECONDS=${LOAD_SECONDS:-15}
export LOAD_USERS=${LOAD_USERS:-32}
REDIS=${SESSION_TEST_REDIS_URL:-redis://127.0.0.1:6379}
PORT=${LOAD_PORT:-3917}

cargo build --release -q -p sealed-session --example axum --features axum
cargo build --release -q -p sealed-session-tests --example loadgen
demo=target/release/examples/axum
loadgen=target/release/examples/loadgen

rss() { awk '/VmRSS/ {print $2 " kB"}' "/proc/$1/status"; }

status=0
for store in "" "$REDIS"; do
  mode=${store:-stateless}
  SESSION_STORE="$store" SESSION_SECRET=load-test-secret-load-test-secret-0123 PORT=$PORT RUST_LOG=warn "$demo" &
  pid=$!
  trap 'kill $pid 2>/dev/null || true' EXIT
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
  # Warm up (allocator pools, connections), then measure.
  LOAD_URL=http://127.0.0.1:$PORT LOAD_SECONDS=2 "$loadgen" >/dev/null
  before=$(rss $pid)
  if ! out=$(LOAD_URL=http://127.0.0.1:$PORT "$loadgen"); then status=1; fi
  after=$(rss $pid)
  echo "[$mode] $out; RSS before $before, after $after"
  kill $pid; wait $pid 2>/dev/null || true
  trap - EXIT
done
exit $status
