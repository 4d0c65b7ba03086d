#!/usr/bin/env bash
# Kernel variants measured against each other in one device call, without a build of the tool per variant:
# each variant is a bf16 cubin of kernels.cu (sm_90) that the tool loads instead of its embedded kernels
# (MIXUP_BERT_KERNELS_BF16, src/Kernels/Cuda/CudaGpu.cs). The whole bf16 training step at bert-base-cased's
# shape (32 × 128) runs ROUNDS times per variant, the variants interleaved (A B C A B C …) so that a drift
# of the card's clocks falls on all of them; then, per variant, Nsight Compute times the step's kernels
# named in KERNELS (one step, the card's own clocks) and the self-test runs on it.
#
# Here, after bench/gpu/prepare.sh (nvcc 11.8, the compiler the shipped tool's kernels come from):
#   bash bench/gpu/variants.sh build NAME [REV] [NVCC FLAGS...]   # .devcheck/variants/NAME.cubin.gz from the
#                                                                 # working tree, or from commit REV ("-": the tree)
# On the GPU machine, carrying .devcheck:
#   bash bench/gpu/variants.sh run > $OUT/variants.log 2>&1
set -uo pipefail
source "$(dirname "$0")/lib.sh"
dir=.devcheck/variants

if [ "${1:-}" = build ]; then
  name=$2 rev=${3:--}; shift 3 2>/dev/null || shift $#
  mkdir -p "$dir"
  src=$PWD
  if [ "$rev" != - ]; then
    src=$(mktemp -d)
    git archive "$rev" kernels.cu kernels | tar -x -C "$src"
  fi
  nvcc -ccbin clang-14 -std=c++17 -O3 -cubin -arch=sm_90 -DMIXUP_BF16 "$@" -o "$dir/$name.cubin" "$src/kernels.cu" || exit 1
  gzip -9 -f "$dir/$name.cubin"   # 1.6 MB to 0.4: the device call carries 64 MiB in all, the tool 55 of them
  echo "$dir/$name.cubin.gz: kernels.cu at ${rev/-/the working tree}, flags: ${*:-none}" | tee "$dir/$name.txt"
  exit 0
fi

[ "${1:-}" = run ] || { echo "usage: variants.sh build NAME [REV] [FLAGS...] | variants.sh run" >&2; exit 2; }
require_tool
out=${OUT:-$PWD/check-out}/variants   # the raw logs; what matters is printed
mkdir -p "$out"
use_cublas
variants=$(ls "$dir"/*.cubin.gz 2>/dev/null | xargs -n1 basename 2>/dev/null | sed 's/\.cubin\.gz$//')
[ -n "$variants" ] || { echo "no variants in $dir: build some first" >&2; exit 2; }
cubins=$(mktemp -d)
for v in $variants; do gunzip -c "$dir/$v.cubin.gz" > "$cubins/$v.cubin"; done
cat "$dir"/*.txt
step=(bench --backend cuda --model .devcheck/bert-base-cased/config.json --batch-size 32 --seq-len 128 --precision bf16)
failed=0
for round in $(seq "${ROUNDS:-3}"); do
  for v in $variants; do
    echo "[$(date -u +%T)] == round $round, $v"
    MIXUP_BERT_KERNELS_BF16="$cubins/$v.cubin" "$tool" "${step[@]}" --mode baseline --steps 20 --warmup 5 --json "$out/bench-$v-$round.json" \
      > "$out/bench-$v-$round.txt" 2>&1 || { echo "$v: bench failed"; tail -5 "$out/bench-$v-$round.txt"; failed=1; }
    grep -E "^train baseline" "$out/bench-$v-$round.txt"
  done
done
ncu=$(cuda_tool ncu)
kernels=${KERNELS:-attention_forward_flash|attention_backward_dq_flash|attention_backward_dkv_flash|bias_gelu_forward|gelu_backward|layernorm_forward_warp|layernorm_backward_warp|column_sum_partial|global_norm_clip|first_token_backward}
for v in $variants; do
  echo "[$(date -u +%T)] == selftest, $v"
  MIXUP_BERT_KERNELS_BF16="$cubins/$v.cubin" "$tool" selftest --backend cuda --only bf16 > "$out/selftest-$v.txt" 2>&1 || { echo "$v: selftest failed"; failed=1; }
  grep -E "^selftest:|^FAIL" "$out/selftest-$v.txt"
  [ -n "$ncu" ] || continue
  # the default kernels launch 126 times a bert-base training step (36 attention, 24 GELU, 50 LayerNorm, 14 column
  # sums, the norm, the first token): 252 are the bench's two training steps
  echo "[$(date -u +%T)] == ncu, $v: $kernels (the first 252 launches of one bench run; the card's clocks)"
  # with the achieved occupancy (the LayerNorm backward was shaped for four blocks an SM); should this ncu not
  # know the metric, once more without it, so that the times still come
  for metrics in gpu__time_duration.sum,launch__registers_per_thread,sm__warps_active.avg.pct_of_peak_sustained_active \
                 gpu__time_duration.sum,launch__registers_per_thread; do
    MIXUP_BERT_KERNELS_BF16="$cubins/$v.cubin" "$ncu" --clock-control none --csv -k "regex:^($kernels)\$" -c 252 --metrics "$metrics" \
      "$tool" "${step[@]}" --mode baseline --steps 1 --warmup 0 2>/dev/null > "$out/ncu-$v.csv"
    grep -q gpu__time_duration "$out/ncu-$v.csv" && break
    echo "$v: ncu gave no times with $metrics"
  done
done
python3 - "$out" $variants <<'PY'
import csv, json, os, statistics, sys
from collections import defaultdict
out, variants = sys.argv[1], sys.argv[2:]
print("\nvariant                 train step samples/s (median of rounds; each round a median of 20 steps)   pipelined   pipelined / the first variant's")
first = None
for v in variants:
    plain, piped = [], []
    for f in sorted(os.listdir(out)):
        if f.startswith(f"bench-{v}-") and f.endswith(".json"):
            for r in json.load(open(os.path.join(out, f)))["results"]:
                if r["case"] == "train baseline": plain.append(r["samples_per_s"])
                if r["case"] == "train baseline pipelined": piped.append(r["samples_per_s"])
    fmt = lambda xs: f"{statistics.median(xs):8.1f} [{min(xs):.1f}..{max(xs):.1f}]" if xs else "     n/a"
    if first is None and piped: first = statistics.median(piped)
    ratio = f"{statistics.median(piped) / first:.3f}" if piped and first else "n/a"
    print(f"{v:22s} {fmt(plain):>40s}   {fmt(piped)}   {ratio}")
print("\nvariant                kernel                          launches  median us  registers  occupancy %")
for v in variants:
    path = os.path.join(out, f"ncu-{v}.csv")
    if not os.path.exists(path): continue
    rows = list(csv.DictReader(l for l in open(path) if l.startswith('"')))
    t, regs, occ = defaultdict(list), {}, defaultdict(list)
    for r in rows:
        if r["Metric Name"] == "gpu__time_duration.sum":
            scale = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3}.get(r["Metric Unit"], float("nan"))
            t[r["Kernel Name"]].append(float(r["Metric Value"].replace(",", "")) * scale)
        elif r["Metric Name"] == "launch__registers_per_thread": regs[r["Kernel Name"]] = r["Metric Value"]
        elif r["Metric Name"] == "sm__warps_active.avg.pct_of_peak_sustained_active": occ[r["Kernel Name"]].append(float(r["Metric Value"].replace(",", "")))
    for k, xs in sorted(t.items()):
        o = f"{statistics.median(occ[k]):11.1f}" if occ[k] else "        n/a"
        print(f"{v:22s} {k:32s} {len(xs):8d} {statistics.median(xs):10.1f}  {regs.get(k, '?'):>9s}  {o}")
PY
exit $failed
