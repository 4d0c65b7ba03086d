#!/usr/bin/env bash
# The device check of the CUDA backend (issues 4 and 12), for one call on the lent GPU machine:
#   bash bench/gpu/prepare.sh                # here, first
#   device run, carry [".devcheck"], timeout_s 540:  bash bench/gpu/check.sh
# Stages, each timestamped; the script exits non-zero when any stage failed (listing which):
# 1. selftest: every kernel and a training step against the CPU backend, in float32 and in bf16;
# 2. transformers loads a checkpoint the tool wrote, without missing or unexpected keys;
# 3. throughput at bert-base-cased's shape (random weights, batch 32 × 128), baseline and mixup,
#    training and inference, ours in fp32, TF32 and bf16 (bf16 twice: the attention on mma.sync, the
#    default, then on WMMA), GPU memory from the driver (cuMemGetInfo);
# 4. PyTorch's BertForSequenceClassification in the same call: fp32, TF32, and bf16 autocast with
#    SDPA attention and fused AdamW (issue 12's peer), with the driver's memory figure;
# 5. one real rotten_tomatoes epoch (8530 examples, dynamic padding) at bert-base's shape, in TF32
#    and in bf16 (issue 12's goal: under 5 s);
# 6. bench/gpu/profile.sh: Nsight Compute over every kernel of one bf16 step, then its attention
#    kernels on both tensor-core sets;
# 7. bench/gpu/gaps.sh: Nsight Systems' timeline of pipelined bf16 steps, the GPU's idle gaps within a step
#    (what CUDA graphs could remove);
# 8. when bench/gpu/variants.list names any, its kernel variants against each other (bench/gpu/variants.sh).
# Full logs go to $OUT (or ./check-out); the summary table comes last. Without a GPU it stops
# after stage 1 with selftest's "no CUDA device" (exit code 3).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
out=${OUT:-$PWD/check-out}
mkdir -p "$out"
require_tool
failed=()
# stage NAME LOG COMMAND...: runs COMMAND with its output shown and kept in $out/LOG, timed
stage() {
  local name=$1 log=$2; shift 2
  echo "[$(date -u +%T)] == $name"
  local t0=$SECONDS
  "$@" 2>&1 | tee "$out/$log"
  local status=${PIPESTATUS[0]}
  echo "[$(date -u +%T)] == $name: exit $status after $((SECONDS - t0)) s"
  [ "$status" -eq 0 ] || failed+=("$name (exit $status)")
  return "$status"
}
nvidia-smi -L 2>&1 | tee "$out/gpu.txt"

# cuBLAS: the system toolkit's, or the one PyTorch's wheels bring
use_cublas
echo "cuBLAS from ${CUBLAS_DIR:-the dynamic loader search path}" | tee -a "$out/gpu.txt"

stage selftest selftest.txt "$tool" selftest --backend cuda
[ "${failed[*]:-}" = "selftest (exit 3)" ] && { echo "no GPU here: stopping after the self-test"; exit 3; }

stage "transformers loads the tool's checkpoint" hf_load.txt python3 bench/gpu/hf_load_check.py .devcheck/tiny-classifier

for precision in fp32 tf32 bf16; do
  stage "ours, bert-base shape 32 x 128, $precision" "ours-$precision.txt" "$tool" bench --backend cuda --model .devcheck/bert-base-cased/config.json \
    --batch-size 32 --seq-len 128 --mode baseline,mixup --steps 20 --warmup 5 --precision "$precision" --json "$out/ours-$precision.json"
done
# the other tensor-core attention (WMMA; the default is mma.sync), for the ratio between them
stage "ours, bert-base shape 32 x 128, bf16, WMMA attention" ours-bf16-wmma.txt "$tool" bench --backend cuda \
  --model .devcheck/bert-base-cased/config.json --batch-size 32 --seq-len 128 --mode baseline,mixup --steps 20 --warmup 5 \
  --precision bf16 --attention-kernels wmma --json "$out/ours-bf16-wmma.json"
stage "PyTorch, bert-base shape 32 x 128, fp32/tf32/bf16-AMP+SDPA+fused AdamW" torch.txt python3 bench/gpu/torch_bench.py \
  --config .devcheck/bert-base-cased/config.json --batch-size 32 --seq-len 128 --steps 20 --warmup 5 --json "$out/torch.json"

# a real epoch: bert-base-cased's shape (random weights, made here: 440 MB is too much to carry;
# MiniLM's uncased vocabulary, so vocab_size 30522)
stage "random bert-base-shaped checkpoint" random-init.txt "$tool" convert --model .devcheck/bert-base-vocab --random-init \
  --labels neg,pos --output .devcheck/bert-base-random
cp .devcheck/bert-base-vocab/vocab.txt .devcheck/bert-base-vocab/tokenizer_config.json .devcheck/bert-base-random/ 2>/dev/null
for precision in tf32 bf16; do
  stage "real rotten_tomatoes epoch, bert-base shape, dynamic padding, $precision" "epoch-$precision.txt" "$tool" train --backend cuda \
    --precision "$precision" --model .devcheck/bert-base-random --dataset .devcheck/rotten_tomatoes --mode baseline --epochs 1 --batch-size 32 \
    --output "$out/epoch-run-$precision"
  [ -f "$out/epoch-run-$precision/summary.json" ] && cp "$out/epoch-run-$precision/summary.json" "$out/epoch-summary-$precision.json"
  rm -rf "$out/epoch-run-$precision"
done

stage "ncu: one bf16 step's kernels, then its attention on WMMA and mma.sync" profile.txt bash bench/gpu/profile.sh

# whether CUDA graphs would pay: the GPU's idle time between operations within a step (nsys)
stage "nsys: idle gaps within bf16 steps" gaps.txt bash bench/gpu/gaps.sh

# the variants of bench/gpu/variants.list, built by prepare.sh: whole bf16 steps interleaved, then ncu per kernel
if ls .devcheck/variants/*.cubin.gz >/dev/null 2>&1; then
  stage "kernel variants (bench/gpu/variants.list)" variants.txt bash bench/gpu/variants.sh run
fi

python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
def load(name):
    path = os.path.join(out, name)
    return json.load(open(path)) if os.path.exists(path) else None
torch = load("torch.json") or {}
print("\n== summary (samples/s, median of timed steps; ratio = mixup-bert / PyTorch at the same precision)")
print(f"{'case':<24}{'mixup-bert':>12}{'PyTorch':>12}{'ratio':>8}")
for precision in ("fp32", "tf32", "bf16"):
    ours = load(f"ours-{precision}.json")
    results = {r["case"]: r for r in ours["results"]} if ours else {}
    for case in ("train baseline", "train mixup", "inference"):
        o, t = results.get(case), torch.get(f"{case} {precision}")
        cell = lambda r: f"{r['samples_per_s']:>12.1f}" if r else f"{'-':>12}"
        print(f"{case + ' ' + precision:<24}{cell(o)}{cell(t)}{o['samples_per_s'] / t['samples_per_s'] if o and t else float('nan'):>8.2f}")
    if ours: print(f"{'GPU memory ' + precision + ' (MiB)':<24}{ours.get('gpu_memory_used_mib') or '-':>12}{(torch.get('memory ' + precision) or {}).get('driver_used_mib', '-'):>12}")
ours, t = load("ours-bf16.json"), torch.get("train baseline tf32")
base = {r["case"]: r for r in ours["results"]}.get("train baseline") if ours else None
if base and t: print(f"train baseline: ours bf16 / PyTorch TF32 = {base['samples_per_s'] / t['samples_per_s']:.2f} (goal >= 2)")
for precision in ("fp32", "tf32", "bf16"):
    ours = load(f"ours-{precision}.json")
    cases = {r["case"]: r for r in ours["results"]} if ours else {}
    p, b = cases.get("train baseline pipelined"), cases.get("train baseline")
    if p and b: print(f"train baseline {precision}, pipelined as the trainer runs: {p['samples_per_s']:.1f} samples/s ({p['samples_per_s'] / b['samples_per_s']:.2f}x one step at a time)")
sync, wmma = load("ours-bf16.json"), load("ours-bf16-wmma.json")
if wmma and sync:
    w, m = ({r["case"]: r for r in x["results"]} for x in (wmma, sync))
    for case in ("train baseline", "train mixup", "inference"):
        if case in w and case in m:
            print(f"bf16 {case}, attention mma.sync / WMMA: {m[case]['samples_per_s']:.1f} / {w[case]['samples_per_s']:.1f} = {m[case]['samples_per_s'] / w[case]['samples_per_s']:.2f}")
for precision in ("tf32", "bf16"):
    epoch = load(f"epoch-summary-{precision}.json")
    if epoch: print(f"real epoch, bert-base shape, {precision}: {epoch.get('epoch_seconds')} s ({epoch.get('train_samples_per_second')} samples/s; goal < 5 s)")
PY
if [ "${#failed[@]}" -gt 0 ]; then
  echo "FAILED stages: ${failed[*]}"
  exit 1
fi
echo "all stages passed"
