#!/usr/bin/env bash
# Issue 12's grid goal: the all-MiniLM-L6-v2 compare grid of docs/results.md (issue 5: 4 modes × 5 seeds × 4
# train sizes = 80 runs, 3 epochs, lr 5e-5, seed 42) in half its time. That grid ran on 2026-11-26 in TF32 at
# commit b9ad1fc, in one device call of about 4 minutes (the call's length; the command was not timed alone);
# its runs' training epochs add up to 100.0 s (docs/experiments/2026-11-26-minilm-rotten-tomatoes/runs.csv).
# This runs the same command with the default precision (bf16 on this GPU), timed, once per worker count in
# WORKERS: 1 is one run at a time, as then; 4 is four runs at once on the one GPU (--devices 0,0,0,0), since
# a MiniLM step leaves most of an H200 idle. Today's tool also writes no checkpoint in these short runs
# (--checkpoint-every's default, 300 s); the 2026-11-26 grid wrote one every epoch. On the machine
# bench/gpu/parity.sh ran on, in the same call:
#   bash bench/gpu/prepare.sh; bash bench/gpu/prepare_parity.sh               # here
#   device run, carry [".devcheck-parity"], timeout_s 540:  bash bench/gpu/parity.sh > $OUT/parity.log 2>&1; bash bench/gpu/grid.sh > $OUT/grid.log 2>&1
# Run folders go to $GRID_DIR (not $OUT: 80 of them); $OUT gets each grid's runs.csv.
# BACKEND=cpu WORKERS=1 SEEDS=1 MODES=baseline SIZES=8/class EPOCHS=1 bash bench/gpu/grid.sh
# runs the plumbing on a CPU (a dry run, not a measurement).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
out=${OUT:-$PWD/grid-out}
grid_dir=${GRID_DIR:-/tmp/mixup-grid}
require_tool "the machine is not the warm one bench/gpu/check.sh ran on; run that call again first"
[ -d .devcheck-parity/minilm ] || { echo "no .devcheck-parity: run bench/gpu/prepare_parity.sh and carry .devcheck-parity" >&2; exit 2; }
mkdir -p "$out"
rm -rf "$grid_dir" && mkdir -p "$grid_dir"
failed=0
for workers in $(echo "${WORKERS:-1,4}" | tr , ' '); do
  devices=""
  [ "$workers" -gt 1 ] && devices="--devices $(yes 0 | head -n "$workers" | paste -sd,)"
  dir="$grid_dir/workers-$workers"
  echo "[$(date -u +%T)] == grid, $workers run(s) at a time"
  start=$(date +%s.%N)
  # shellcheck disable=SC2086
  "$tool" compare --model .devcheck-parity/minilm --dataset .devcheck-parity/rotten_tomatoes \
    --modes "${MODES:-baseline,mixup,tmix,senmix}" --seeds "${SEEDS:-5}" --train-sizes "${SIZES:-64/class,256/class,1024/class,all}" \
    --epochs "${EPOCHS:-3}" --batch-size 32 --lr 5e-5 --seed 42 --backend "${BACKEND:-cuda}" $devices --no-report --output "$dir" \
    >"$dir.log" 2>&1
  status=$?
  end=$(date +%s.%N)
  tail -n 3 "$dir.log"
  "$tool" report "$dir" >"$dir.report.log" 2>&1 || echo "report failed: $(tail -n 2 "$dir.report.log")"   # writes runs.csv
  cp "$dir/runs.csv" "$out/grid-workers-$workers-runs.csv" 2>/dev/null
  python3 - "$dir" "$workers" "$start" "$end" "$status" <<'PY'
import csv, glob, json, os, sys
d, workers, start, end, status = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
runs, timings = os.path.join(d, "runs.csv"), os.path.join(d, "timings.csv")
rows = list(csv.DictReader(open(runs))) if os.path.exists(runs) else []
train = sum(float(r["train_seconds"]) for r in csv.DictReader(open(timings))) if os.path.exists(timings) else float("nan")
print(f"grid with {workers} run(s) at a time: exit {status}, {len(rows)} runs in runs.csv, {end - start:.1f} s wall "
      f"(the command alone), their training epochs {train:.1f} s (2026-11-26, TF32: a call of about 4 minutes, epochs 100.0 s)")
by_mode = {}
for r in rows:
    if r["size"] == "all" and r["test_accuracy"]: by_mode.setdefault(r["mode"], []).append(float(r["test_accuracy"]))
for m, xs in by_mode.items(): print(f"  train size all, {m}: mean test accuracy {sum(xs) / len(xs):.4f} over {len(xs)} seeds")
PY
  [ "$status" -eq 0 ] || failed=1
done
exit $failed
