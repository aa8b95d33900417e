#!/usr/bin/env bash
# Compare two commits on this machine, alternating: `tools/ab_bench.sh <commit> [rounds] [bench]`
# runs `BENCH=<bench>` (default profile) on <commit> (a git worktree) and on this checkout in
# turn, <rounds> times (default 2), and prints each run's headline numbers. The machines here
# drift by 10-20% within an hour, so a change is measured against its parent in the same
# minutes, never against a number written down earlier.
#
# The worktree reuses this checkout's .venv and, when the old commit has no embeddings of its
# own, the classifier's distilled model. Result files under tests/benchmarks/results are put
# back afterwards in both trees; the runs' JSON is kept under $AB_OUT (default /tmp/ab-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
OLD="${1:?usage: tools/ab_bench.sh <commit> [rounds] [bench]}"
ROUNDS="${2:-2}"
BENCH_NAME="${3:-profile}"
OUT="${AB_OUT:-/tmp/ab-bench}"
HERE="$PWD"
PY="$HERE/.venv/bin/python"
TREE="$(mktemp -d)/old"
MODEL=services/tierlift/classifier/model/static-minilm
declare -A FILES=([profile]=cpu_profile [overhead]=router_overhead [gateway]=gateway [floor]=floor
                  [classifier]=classifier_load [ledger]=ledger [shadow]=shadow [detectors]=detectors
                  [auth]=auth [local]=local_model)
RESULT="${FILES[$BENCH_NAME]:?unknown bench $BENCH_NAME}.json"

git worktree add --detach --quiet "$TREE" "$OLD"
trap 'git worktree remove --force "$TREE"; git worktree prune' EXIT
[[ -d "$HERE/$MODEL" && ! -d "$TREE/$MODEL" ]] && cp -r "$HERE/$MODEL" "$TREE/$MODEL"
mkdir -p "$OUT"

run() {  # run <label> <tree> <round>
    (cd "$2" && PYTHONPATH="$2/services:$2" BENCH="$BENCH_NAME" "$PY" -m tests.benchmarks.run >"$OUT/$1-$3.log" 2>&1)
    cp "$2/tests/benchmarks/results/$RESULT" "$OUT/$1-$3.json"
    (cd "$2" && git checkout --quiet -- tests/benchmarks/results)
    "$PY" - "$1" "$3" "$OUT/$1-$3.json" <<'PY'
import json, sys
label, round_, path = sys.argv[1:]
d = json.load(open(path))
keys = ("answered_per_s", "cpu_ms_per_request_total", "cpu_ms_per_request", "router_p50_ms",
        "gateway_p50_ms", "added_p50_ms", "routed_request_floor_ms", "router_replicas")
print(f"{label} round {round_}:", json.dumps({k: d[k] for k in keys if k in d} or d)[:600])
PY
}

for round in $(seq 1 "$ROUNDS"); do
    run old "$TREE" "$round"
    run new "$HERE" "$round"
done
echo "runs kept in $OUT (old = $OLD, new = $(git rev-parse --short HEAD)$(git diff --quiet || echo -dirty))"
