#!/usr/bin/env bash
# Issue 6's peer comparisons, all on this machine in one script, so that the ratios compare runs
# made under the same conditions. Needs Debian's python3-torch (apt-get install python3-torch) and
# ../shared (or MIXUP_BERT_SHARED). Writes everything to ${OUT:-bench-out}/ and prints a summary.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-bench-out}; mkdir -p "$out"
shared=${MIXUP_BERT_SHARED:-../shared}
threads=$(nproc)
dotnet build src/Tool -c Release >/dev/null
tool="dotnet src/Tool/bin/Release/net10.0/mixup-bert.dll"
minilm="$shared/hf/sentence-transformers/all-MiniLM-L6-v2/resolve/main"
bertbase="$shared/hf/google-bert/bert-base-cased/resolve/main/config.json"

echo "== the machine's peak, GEMMs, the CPU kernels, and inference against ONNX Runtime (BenchmarkDotNet)"
dotnet run -c Release --project bench -- --filter '*PeakBenchmarks*' '*GemmBenchmarks*' '*KernelBenchmarks*' '*OnnxPeerBenchmarks*' --artifacts "$out/bdn" > "$out/bdn.txt" 2>&1
grep -E '^\|' "$out/bdn.txt" | tee "$out/bdn-summary.txt"

echo "== training steps: mixup-bert"
$tool bench --model "$minilm/config.json" --batch-size 32 --seq-len 64 --mode baseline,mixup,tmix,senmix --backend cpu --threads "$threads" --steps 5 --warmup 2 --json "$out/ours-minilm-32x64.json" | tee "$out/ours-minilm-32x64.txt"
$tool bench --model "$bertbase" --batch-size 32 --seq-len 128 --mode baseline,mixup --backend cpu --threads "$threads" --steps 3 --warmup 1 --json "$out/ours-bertbase-32x128.json" | tee "$out/ours-bertbase-32x128.txt"

echo "== training steps: Debian's PyTorch (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for this run only)"
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/peers/torch_cpu_step.py --preset minilm --batch 32 --seq 64 --threads "$threads" --steps 5 --warmup 2 --json "$out/torch-minilm-32x64.json"
# about 8 minutes a step on the 2-core development machine: SKIP_TORCH_BERTBASE=1 leaves it out
if [ -z "${SKIP_TORCH_BERTBASE:-}" ]; then
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/peers/torch_cpu_step.py --preset bert-base --batch 32 --seq 128 --threads "$threads" --steps 2 --warmup 1 --json "$out/torch-bertbase-32x128.json"
fi

python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
for name in ("minilm-32x64", "bertbase-32x128"):
    doc = json.load(open(os.path.join(out, f"ours-{name}.json")))
    ours = {r["case"]: r for r in doc["results"]}
    o = ours["train baseline"]
    line = f"{name}: mixup-bert {o['median_s']:.3f} s/step ({o['gflops']:.1f} GFLOP/s, {o['gflops'] / doc['cpu_fma_peak_gflops'] * 100:.0f}% of the FMA peak)"
    path = os.path.join(out, f"torch-{name}.json")
    if os.path.exists(path):
        torch = json.load(open(path))
        line += f", PyTorch {torch['median_s']:.3f} s/step ({torch['gflops']:.1f} GFLOP/s), speed ratio {torch['median_s'] / o['median_s']:.2f}"
    print(line)
PY
