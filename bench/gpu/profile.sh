#!/usr/bin/env bash
# Nsight Compute over one bf16 training step at bert-base-cased's shape (32 × 128): first every kernel of
# the step, its time alone (where the step's time goes: GEMMs, attention, LayerNorm, GELU, AdamW, …), then
# the fused attention once per tensor-core kernel set (WMMA, mma.sync): per kernel its time, registers,
# achieved occupancy, tensor-pipe use and instructions, the figures that say why one set is faster. ncu
# runs the kernels one at a time and flushes the caches between them (its default), as the earlier
# profiles in docs/perf.md did, so small kernels read as slower than in the stream. check.sh runs it last;
# alone: bash bench/gpu/prepare.sh here, then this on the GPU machine carrying .devcheck.
# Exits 0 when ncu is missing or may not read the counters (it says so): a profile is a diagnosis, not
# a check.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
out=${OUT:-$PWD/check-out}
mkdir -p "$out"
require_tool
use_cublas
ncu=$(cuda_tool ncu)
[ -n "$ncu" ] || { echo "no ncu on this machine: profile skipped"; exit 0; }
# every kernel of the first step (bench with no warm-up): from its embedding_forward to its AdamW launch
csv="$out/ncu-step.csv"
if "$ncu" --csv --metrics gpu__time_duration.sum --launch-count 500 "$tool" bench --backend cuda --model .devcheck/bert-base-cased/config.json \
    --batch-size 32 --seq-len 128 --mode baseline --steps 1 --warmup 0 --precision bf16 >"$csv" 2>"$out/ncu-step.err"; then
  python3 - "$csv" <<'PY'
import csv, re, sys
from collections import defaultdict
lines = [l for l in open(sys.argv[1]) if l.startswith('"')]
scale = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3}
launches = []   # (id, kernel, us) in launch order
for row in csv.DictReader(lines):
    if row["Metric Name"] != "gpu__time_duration.sum": continue
    try: launches.append((int(row["ID"]), row["Kernel Name"], float(row["Metric Value"].replace(",", "")) * scale.get(row["Metric Unit"], float("nan"))))
    except ValueError: pass
launches.sort()
names = [k for _, k, _ in launches]
first = next((i for i, k in enumerate(names) if k.startswith("embedding_forward")), None)
last = next((i for i, k in enumerate(names) if k.startswith("adamw_update_tensors") and first is not None and i > first), None)
if first is None or last is None:
    print(f"ncu-step: no whole step among the {len(launches)} launches profiled"); sys.exit(0)
step = launches[first:last + 1]
total = sum(us for _, _, us in step)
def family(k):
    if re.match(r"(nvjet|sm\d+_xmma|cutlass|.*gemm)", k): return "GEMMs (cuBLAS)"
    for f in ("attention", "layernorm", "gelu", "adamw", "embedding", "dropout", "cross_entropy", "column_sum", "add_chunk_partials", "add_bias"):
        if f in k: return f
    return "other"
by_kernel, by_family = defaultdict(lambda: [0, 0.0]), defaultdict(float)
for _, k, us in step:
    short = k.split("(")[0][:48]
    by_kernel[short][0] += 1; by_kernel[short][1] += us; by_family[family(k)] += us
print(f"\n== ncu, every kernel of one bf16 training step (launches {first}..{last}: {len(step)} kernels, {total / 1000:.2f} ms serialised, caches flushed)")
print(f"{'family':<24}{'us':>10}{'share':>8}")
for f, us in sorted(by_family.items(), key=lambda kv: -kv[1]): print(f"{f:<24}{us:>10.1f}{100 * us / total:>7.1f}%")
print(f"\n{'kernel':<50}{'launches':>9}{'us/launch':>11}{'us/step':>10}{'share':>8}")
for k, (n, us) in sorted(by_kernel.items(), key=lambda kv: -kv[1][1]): print(f"{k:<50}{n:>9}{us / n:>11.1f}{us:>10.1f}{100 * us / total:>7.1f}%")
PY
else
  echo "ncu failed for the whole step:"; tail -5 "$out/ncu-step.err"
fi

# one step, no warm-up: the first 48 attention launches are its 12 forwards and 12 × (dot, dq, dK/dV)
metrics=gpu__time_duration.sum,launch__registers_per_thread,sm__warps_active.avg.pct_of_peak_sustained_active,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum
for kernels in wmma mma-sync; do
  csv="$out/ncu-attention-$kernels.csv"
  run() {
    "$ncu" --csv --metrics "$1" -k regex:attention --launch-count 48 "$tool" bench --backend cuda --model .devcheck/bert-base-cased/config.json \
      --batch-size 32 --seq-len 128 --mode baseline --steps 1 --warmup 0 --precision bf16 --attention-kernels "$kernels" >"$csv" 2>"$out/ncu-attention-$kernels.err"
  }
  # a metric this ncu does not know fails the whole run: then the time alone
  run "$metrics" || run gpu__time_duration.sum || { echo "ncu failed for $kernels:"; tail -5 "$out/ncu-attention-$kernels.err"; continue; }
  python3 - "$csv" "$kernels" <<'PY'
import csv, sys
from collections import defaultdict
path, kernels = sys.argv[1], sys.argv[2]
lines = [l for l in open(path) if l.startswith('"')]
values = defaultdict(lambda: defaultdict(list))
for row in csv.DictReader(lines):
    try: v = float(row["Metric Value"].replace(",", ""))
    except ValueError: continue
    values[row["Kernel Name"]][row["Metric Name"]].append((v, row["Metric Unit"]))
print(f"\n== ncu, one bf16 step's attention kernels, {kernels} (per launch: median over the step's launches)")
print(f"{'kernel':<32}{'launches':>9}{'us/launch':>11}{'us/step':>9}{'regs':>6}{'occupancy%':>11}{'tensor%':>8}{'Minstr':>8}")
def med(xs): xs = sorted(xs); return xs[len(xs) // 2]
def micros(m):
    t = m.get("gpu__time_duration.sum", [])
    return [v * {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3}.get(u, float("nan")) for v, u in t]
total = 0.0
for name, m in sorted(values.items(), key=lambda kv: -sum(micros(kv[1]))):
    us = micros(m); total += sum(us)
    def col(metric, fmt):
        xs = [v for v, _ in m.get(metric, [])]
        return format(med(xs), fmt) if xs else "-"
    inst = m.get("smsp__inst_executed.sum", [])
    print(f"{name[:31]:<32}{len(us):>9}{med(us) if us else float('nan'):>11.1f}{sum(us):>9.1f}{col('launch__registers_per_thread', '.0f'):>6}"
          f"{col('sm__warps_active.avg.pct_of_peak_sustained_active', '.1f'):>11}{col('sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active', '.1f'):>8}"
          f"{(format(med([v for v, _ in inst]) / 1e6, '.2f') if inst else '-'):>8}")
print(f"attention in one step ({kernels}): {total:.1f} us (kernels serialised by ncu)")
PY
done
exit 0
