#!/usr/bin/env bash
# `make bench-peers`: Tierlift (its OpenAI-compatible edge) beside LiteLLM and Portkey in
# ../shared/tools/gwbench, on one instant upstream, in one run. gwbench installs its peers into
# $GWBENCH_WORK (default /tmp/gwbench: a venv and, with npm, Portkey). Writes gwbench's JSON, with
# the command, commit and machine, to tests/benchmarks/results/peers.json. Extra arguments go to
# gwbench (default: the full matrix, ~10-15 minutes on 2 cores). TIERLIFT_TOPOLOGY=combined runs
# Tierlift's request path as one process and writes peers_combined.json instead.
set -euo pipefail
cd "$(dirname "$0")/.."
GWBENCH="${GWBENCH:-../shared/tools/gwbench}"
[[ -f "$GWBENCH/run.sh" ]] || { echo "gwbench not found at $GWBENCH (set GWBENCH)"; exit 2; }
STATE="$(mktemp -d)/tierlift-bench"
PY="$PWD/.venv/bin/python"
KEY="$("$PY" -m tests.benchmarks.peers prepare "$STATE" | tail -1)"
RAW="$(mktemp)"
ARGS=("$@")
[[ ${#ARGS[@]} -gt 0 ]] || ARGS=(--systems direct,litellm-1w,portkey,project --levels 1,16,128 -n 1000 --reps 2
                                 --stream-levels 1 --stream-n 200)
GWBENCH_PROJECT_CMD="cd '$PWD' && exec '$PY' -m tests.benchmarks.peers serve '$STATE'" \
GWBENCH_PROJECT_TARGET="http://127.0.0.1:18084/v1/chat/completions" \
GWBENCH_PROJECT_READY="http://127.0.0.1:18084/health" \
GWBENCH_PROJECT_HEADERS="{\"Authorization\": \"Bearer $KEY\"}" \
  bash "$GWBENCH/run.sh" "${ARGS[@]}" --out "$RAW"
TOPOLOGY="${TIERLIFT_TOPOLOGY:-microservices}"
OUT="tests/benchmarks/results/peers.json"
[[ "$TOPOLOGY" == "microservices" ]] || OUT="tests/benchmarks/results/peers_${TOPOLOGY}.json"
"$PY" - "$RAW" "TIERLIFT_TOPOLOGY=$TOPOLOGY bash tools/bench_peers.sh ${*:-}" "$OUT" <<'PY'
import json, sys
from pathlib import Path
from tierlift.results import write_result
write_result(Path(sys.argv[3]), sys.argv[2], {"gwbench": json.loads(Path(sys.argv[1]).read_text())})
PY
