#!/usr/bin/env bash
# The device check of the CUDA backend (issue 4), for one call on the lent GPU machine:
#   bash bench/gpu/prepare.sh                # here, first
#   device run, carry [".devcheck"]:  bash bench/gpu/check.sh
# 1. mixup-bert selftest --backend cuda: every kernel and a training step against the CPU backend;
# 2. transformers loads a checkpoint the tool wrote, without missing or unexpected keys;
# 3. throughput at bert-base-cased's shape (random weights, batch 32 × 128), baseline and mixup,
#    fp32 and TF32, against PyTorch's BertForSequenceClassification in the same call.
# Full logs go to $OUT (or ./check-out); the table comes last. Without a GPU it stops after
# step 1 with selftest's "no CUDA device" (exit code 3).
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-$PWD/check-out}
mkdir -p "$out"
tool=.devcheck/tool/mixup-bert
[ -x "$tool" ] || { echo "no $tool: run bench/gpu/prepare.sh first and carry .devcheck" >&2; exit 2; }
nvidia-smi -L 2>&1 | tee "$out/gpu.txt"

# cuBLAS: the system toolkit's, or the one PyTorch's wheels bring
for d in /usr/local/cuda/lib64 $(python3 -c 'import nvidia, os; print(" ".join(os.path.join(p, s, "lib") for p in nvidia.__path__ for s in ("cu13", "cublas")))' 2>/dev/null); do
  if ls "$d"/libcublas.so.1[123] >/dev/null 2>&1; then export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"; echo "cuBLAS from $d" | tee -a "$out/gpu.txt"; break; fi
done

echo "== selftest"
"$tool" selftest --backend cuda 2>&1 | tee "$out/selftest.txt"
status=${PIPESTATUS[0]}
[ "$status" -eq 3 ] && { echo "no GPU here: stopping after the self-test"; exit 3; }

echo "== transformers loads the tool's checkpoint"
python3 bench/gpu/hf_load_check.py .devcheck/tiny-classifier 2>&1 | tee "$out/hf_load.txt"

echo "== throughput, bert-base-cased shape, batch 32 x 128"
for tf32 in off on; do
  "$tool" bench --backend cuda --model .devcheck/bert-base-cased/config.json --batch-size 32 --seq-len 128 \
    --mode baseline,mixup --steps 20 --warmup 5 --tf32 "$tf32" --json "$out/ours-tf32-$tf32.json" 2>&1 | tee "$out/ours-tf32-$tf32.txt"
done
python3 bench/gpu/torch_bench.py --config .devcheck/bert-base-cased/config.json --batch-size 32 --seq-len 128 \
  --steps 20 --warmup 5 --json "$out/torch.json" 2>&1 | tee "$out/torch.txt"

python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
torch = json.load(open(os.path.join(out, "torch.json")))
print("\n== summary (samples/s, median of timed steps; ratio = mixup-bert / PyTorch)")
print(f"{'case':<22}{'mixup-bert':>12}{'PyTorch':>12}{'ratio':>8}")
for tf32 in ("off", "on"):
    path = os.path.join(out, f"ours-tf32-{tf32}.json")
    if not os.path.exists(path): continue
    ours = {r["case"]: r for r in json.load(open(path))["results"]}
    for mode in ("baseline", "mixup"):
        o = ours.get(f"train {mode}"); t = torch.get(f"train {mode} tf32={tf32}")
        if o and t: print(f"{'train ' + mode + ' ' + ('tf32' if tf32 == 'on' else 'fp32'):<22}{o['samples_per_s']:>12.1f}{t['samples_per_s']:>12.1f}{o['samples_per_s'] / t['samples_per_s']:>8.2f}")
    o = ours.get("inference"); t = torch.get(f"inference tf32={tf32}")
    if o and t: print(f"{'inference ' + ('tf32' if tf32 == 'on' else 'fp32'):<22}{o['samples_per_s']:>12.1f}{t['samples_per_s']:>12.1f}{o['samples_per_s'] / t['samples_per_s']:>8.2f}")
PY
exit "$status"
