#!/usr/bin/env bash
# The GPU checks in one run, for a machine lent for a few minutes: the CUDA tests, the engine
# benchmark at several batch sizes (and compiled at the middle one), the end-to-end training
# benchmark (eager and compiled), and last the game rules on the GPU against the reference
# engine. Results go to $OUT_DIR/gpu_check.jsonl (one JSON
# object per benchmark, tagged with "check") and everything printed to $OUT_DIR/gpu_check.log,
# written as it comes, so a run cut short keeps what it did.
#
#   bash benchmarks/gpu_check.sh          # cuda; envs 4096 16384 65536; train 30 s; ~7 min
#   DEVICE=cpu ENVS=16 TRAIN_SECONDS=5 ROUNDS=1 bash benchmarks/gpu_check.sh   # dry run
#
# Settings (environment): DEVICE, ENVS ("" for none), ROUNDS, TRAIN_SECONDS, RECIPE, OUT_DIR
# (default $OUT, else benchmarks/out), PYTHON (default .venv/bin/python when present),
# DEADLINE (seconds for the whole run, default 540: each step's limit is cut to what is left).
# Needs the package importable (`bash scripts/setup.sh`, or PYTHONPATH with its dependencies).

# No `set -e`: a failed step is counted and the next one still runs.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR=${OUT_DIR:-${OUT:-$ROOT/benchmarks/out}}
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"  # relative to where the script was called from
cd "$ROOT"
DEVICE=${DEVICE:-cuda}
ENVS=${ENVS-"4096 16384 65536"}  # ENVS="" runs no engine benchmark
ROUNDS=${ROUNDS:-3}
TRAIN_SECONDS=${TRAIN_SECONDS:-30}
RECIPE=${RECIPE:-arena_basic_easy_shaped}
DEADLINE=${DEADLINE:-540}
if [ -z "${PYTHON:-}" ]; then
  PYTHON=python3
  [ -x .venv/bin/python ] && PYTHON=.venv/bin/python
fi

RESULTS="$OUT_DIR/gpu_check.jsonl"
LOG="$OUT_DIR/gpu_check.log"
STDOUT="$(mktemp)"
trap 'rm -f "$STDOUT"' EXIT
: >"$RESULTS"
: >"$LOG"
export PYTHONUNBUFFERED=1
failures=0

# step NAME LIMIT WANTS_JSON COMMAND...: run COMMAND for at most LIMIT seconds (less if the
# deadline is nearer), its output streamed into the log; with WANTS_JSON=json, the last stdout
# line that starts with "{" is tagged and appended to RESULTS, and a run without one fails.
step() {
  local name=$1 limit=$2 wants=$3
  shift 3
  local left=$((DEADLINE - SECONDS - 10))
  if [ "$left" -lt 20 ]; then
    echo "== $name: skipped, the deadline is near" | tee -a "$LOG"
    failures=$((failures + 1))
    return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  { printf '== %s (limit %s s):' "$name" "$limit"; printf ' %q' "$@"; echo; } | tee -a "$LOG"
  local started=$SECONDS rc
  timeout -k 10 "$limit" "$@" 2>>"$LOG" | tee -a "$LOG" >"$STDOUT"
  rc=${PIPESTATUS[0]}
  tail -n 2 "$STDOUT"
  if [ "$wants" = json ] && [ "$rc" -eq 0 ]; then
    local last
    last=$(grep '^{' "$STDOUT" | tail -n 1)
    if ! "$PYTHON" -c 'import json, sys; d = json.loads(sys.argv[2]); d["check"] = sys.argv[1]; print(json.dumps(d))' \
        "$name" "$last" >>"$RESULTS" 2>>"$LOG"; then
      echo "== $name: no JSON result line" | tee -a "$LOG"
      rc=1
    fi
  fi
  echo "== $name: exit $rc after $((SECONDS - started)) s" | tee -a "$LOG"
  [ "$rc" -eq 0 ] || failures=$((failures + 1))
}

{ if command -v nvidia-smi >/dev/null; then nvidia-smi -L; else echo "no nvidia-smi"; fi
  "$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())'
} | tee -a "$LOG"
if [ "$DEVICE" != cpu ] && ! "$PYTHON" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
  echo "DEVICE=$DEVICE but torch sees no CUDA device: nothing would be checked" | tee -a "$LOG"
  exit 1
fi

if [ "$DEVICE" != cpu ]; then
  # Every test parametrised over devices, and the CUDA-only ones (CPU cases deselected).
  step cuda_tests 240 - "$PYTHON" -m pytest -q -p no:cacheprovider -k cuda tests/engine/test_engine_batched.py \
    tests/trainer tests/policies tests/checkpoint/test_checkpoint_cuda.py
fi
for envs in $ENVS; do
  step "env_$envs" 120 json "$PYTHON" -m heartgrid.tools.cli bench env "$RECIPE" --device "$DEVICE" \
    --envs "$envs" --rounds "$ROUNDS" --seconds 2 --json
done
# The compiled step (system.compile) at the middle batch size, and in training: it is off by
# default until it is measured faster on a GPU (benchmarks/README.md).
set -- $ENVS
if [ $# -gt 0 ]; then
  middle=$(eval echo "\${$(( ($# + 1) / 2 ))}")
  step "env_${middle}_compiled" 240 json "$PYTHON" -m heartgrid.tools.cli bench env "$RECIPE" \
    --device "$DEVICE" --envs "$middle" --rounds "$ROUNDS" --seconds 2 --compile --json
fi
step train 180 json "$PYTHON" -m heartgrid.tools.cli bench train "$RECIPE" --device "$DEVICE" \
  --seconds "$TRAIN_SECONDS" --json
step train_compiled 240 json "$PYTHON" -m heartgrid.tools.cli bench train "$RECIPE" system.compile=true \
  --device "$DEVICE" --seconds "$TRAIN_SECONDS" --json
if [ "$DEVICE" != cpu ]; then
  # The scenario and reference-equivalence tests with the batched engine on the GPU (last: the
  # benchmarks above are what a short lease is for).
  step engine_rules 180 - env HEARTGRID_TEST_DEVICE="$DEVICE" "$PYTHON" -m pytest -q -p no:cacheprovider \
    -k "not compiled" tests/engine/test_engine_scenarios.py tests/engine/test_engine_equivalence.py
  # A few scenarios on the compiled step on the GPU (each compiles its own graph, so not all).
  step compiled_rules 150 - env HEARTGRID_TEST_DEVICE="$DEVICE" "$PYTHON" -m pytest -q -p no:cacheprovider \
    -k "compiled and (simultaneous_attacks or swap_with or two_agents_moving)" tests/engine/test_engine_scenarios.py
fi

echo "results: $RESULTS ($(wc -l <"$RESULTS") lines); log: $LOG; failed steps: $failures" | tee -a "$LOG"
[ "$failures" -eq 0 ]
