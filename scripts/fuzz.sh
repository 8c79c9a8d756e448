#!/usr/bin/env bash
# Runs every fuzz target for a set time on the stable toolchain (cargo-fuzz
# with `--sanitizer none`: coverage-guided libFuzzer, no ASan, which safe
# Rust does not need) and prints executions and findings per target.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 60)
#
# Needs `cargo install cargo-fuzz`. Crashes land in fuzz/artifacts/<target>/;
# each becomes a regression test (see docs/src/security.md).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-60}
command -v cargo-fuzz >/dev/null || { echo "error: cargo-fuzz is not installed: cargo install cargo-fuzz" >&2; exit 1; }

# Seed the iron corpus with real tokens (the JavaScript vectors).
mkdir -p corpus/iron_unseal
python3 - <<'PY'
import json, hashlib, pathlib
v = json.load(open("../session/tests/data/iron_vectors.json"))
for case in v["positive"] + v["edge_positive"] + v["negative"]:
    token = case.get("token")
    if token:
        p = pathlib.Path("corpus/iron_unseal") / hashlib.sha1(token.encode()).hexdigest()
        p.write_text(token)
PY

status=0
for target in iron_unseal cookie_header session_id chunked_cookies engine_load; do
  mkdir -p "corpus/$target"
  log=$(mktemp)
  if ! cargo fuzz build -s none "$target" >"$log" 2>&1; then
    echo "fuzz $target: BUILD FAILED"; tail -30 "$log"; status=1; continue
  fi
  if cargo fuzz run -s none "$target" "corpus/$target" -- -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1; then
    result=ok
  else
    result=CRASH
    status=1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
  echo "fuzz $target: ${secs}s, $execs executions, coverage $cov edges, $result"
  [ "$result" = ok ] || tail -30 "$log"
  rm -f "$log"
done
exit $status
