#!/usr/bin/env bash
# Why a memory-bound kernel is slow: Nsight Compute's details (speed of light, memory workload, occupancy,
# launch statistics, warp stall reasons) for one launch of each kernel named in KERNELS, in one bf16 step at
# bert-base-cased's shape (32 × 128), at the card's own clocks (--clock-control none) rather than ncu's
# locked base clock; then the step's every kernel, its time alone at those clocks, to set beside
# profile.sh's table (base clocks). The second launch of each kernel is taken (-s 1): the first of a few
# meets cold instruction caches.
# Alone: bash bench/gpu/prepare.sh here; on the GPU machine, carrying .devcheck:
#   bash bench/gpu/diagnose.sh > $OUT/diagnose.log 2>&1
set -uo pipefail
source "$(dirname "$0")/lib.sh"
require_tool
use_cublas
ncu=$(cuda_tool ncu)
[ -n "$ncu" ] || { echo "no ncu on this machine"; exit 0; }
step=(bench --backend cuda --model .devcheck/bert-base-cased/config.json --batch-size 32 --seq-len 128 --mode baseline
      --steps 1 --warmup 0 --precision bf16)
kernels=${KERNELS:-layernorm_forward_warp layernorm_backward_warp bias_gelu_forward gelu_backward attention_forward_flash attention_backward_dq_flash attention_backward_dkv_flash add_chunk_partials adamw_update_tensors}
for k in $kernels; do
  echo "[$(date -u +%T)] == $k"
  "$ncu" --clock-control none -k "regex:^$k\$" -s 1 -c 1 --section SpeedOfLight --section MemoryWorkloadAnalysis \
    --section Occupancy --section LaunchStats --section WarpStateStats --section SchedulerStats \
    "$tool" "${step[@]}" 2>&1 | grep -v "^==PROF==" || echo "ncu failed for $k"
done
echo "[$(date -u +%T)] == every kernel of the step at the card's clocks"
"$ncu" --clock-control none --csv --metrics gpu__time_duration.sum --launch-count 500 "$tool" "${step[@]}" 2>/dev/null | python3 -c '
import csv, sys, collections
rows = [r for r in csv.reader(l for l in sys.stdin if l.startswith("\"")) ]
head, rows = rows[0], rows[1:]
k, m, v = head.index("Kernel Name"), head.index("Metric Name"), head.index("Metric Value")
t = collections.defaultdict(list)
for r in rows:
    if r[m] == "gpu__time_duration.sum": t[r[k][:48]].append(float(r[v].replace(",", "")) / 1000)
total = sum(sum(x) for x in t.values())
print(f"{len(rows)} launches, {total:.1f} us (the first step and its set-up, serialised, caches flushed)")
for name, xs in sorted(t.items(), key=lambda kv: -sum(kv[1])):
    xs = sorted(xs); print(f"{name:48s} {len(xs):5d} {xs[len(xs) // 2]:9.1f} us/launch median {sum(xs):9.1f} us")
'
echo "[$(date -u +%T)] == done"
