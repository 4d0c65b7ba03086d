#!/usr/bin/env bash
# Would CUDA graphs pay? Nsight Systems' timeline of bf16 training steps at bert-base-cased's shape (32 × 128),
# steps as the trainer runs them (bench's pipelined case): per step, the time the GPU ran kernels or copies,
# and the idle time between one GPU operation's end and the next one's start, split into short gaps (under
# 20 µs: a launch the GPU waited for, what a graph removes) and long ones (the host waiting, which a graph
# would not). A diagnosis, not a check: exits 0 without nsys.
# Alone: bash bench/gpu/prepare.sh here; on the GPU machine, carrying .devcheck:
#   bash bench/gpu/gaps.sh > $OUT/gaps.log 2>&1
set -uo pipefail
source "$(dirname "$0")/lib.sh"
require_tool
use_cublas
nsys=$(cuda_tool nsys)
[ -n "$nsys" ] || { echo "no nsys on this machine: gaps not measured"; exit 0; }
out=${OUT:-$PWD/check-out}/gaps
mkdir -p "$out"
"$nsys" profile --force-overwrite true --trace cuda --output "$out/steps" "$tool" bench --backend cuda \
  --model .devcheck/bert-base-cased/config.json --batch-size 32 --seq-len 128 --precision bf16 --mode baseline \
  --steps 10 --warmup 3 > "$out/profile.txt" 2>&1 || { echo "nsys profile failed"; tail -5 "$out/profile.txt"; exit 0; }
"$nsys" stats --report cuda_gpu_trace --format csv --output "$out/trace" "$out/steps.nsys-rep" > "$out/stats.txt" 2>&1
csv=$(ls "$out"/trace*cuda_gpu_trace*.csv 2>/dev/null | head -1)
[ -n "$csv" ] || { echo "nsys stats wrote no cuda_gpu_trace csv"; tail -5 "$out/stats.txt"; exit 0; }
python3 - "$csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
col = lambda *names: next(k for k in rows[0] if any(n in k for n in names))
start, dur, name = col("Start"), col("Duration"), col("Name")
ops = sorted((float(r[start]), float(r[dur]), r[name]) for r in rows)
# steps end with AdamW's one launch; the last third of them are the pipelined case's (bench runs baseline,
# then pipelined, then inference): take the steps between the last few AdamW launches
ends = [i for i, (_, _, n) in enumerate(ops) if n.startswith("adamw_update_tensors")]
if len(ends) < 4: print(f"only {len(ends)} AdamW launches in the trace: no whole steps"); sys.exit(0)
first, last = ends[-4], ends[-1]   # the last three whole steps
window = ops[first + 1:last + 1]
busy = short = long_ = 0.0
end = ops[first][0] + ops[first][1]
for s, d, n in window:                 # in start order; overlapping operations count once
    gap = s - end
    if gap > 0:
        if gap < 20000: short += gap
        else: long_ += gap
    busy += max(0.0, s + d - max(s, end))
    end = max(end, s + d)
steps = 3
span = end - (ops[first][0] + ops[first][1])
print(f"last {steps} steps: {len(window) / steps:.0f} GPU operations a step, {span / steps / 1e3:.1f} us a step")
print(f"  busy {busy / steps / 1e3:.1f} us, short gaps (< 20 us) {short / steps / 1e3:.1f} us, long gaps {long_ / steps / 1e3:.1f} us a step")
print(f"  short gaps: {100 * short / span:.1f}% of the step (what CUDA graphs could remove at most)")
PY
