#!/usr/bin/env bash
# Issue #11's behaviour check: the fixed-seed CPU fine-tuning of all-MiniLM-L6-v2 on 512 examples of
# rotten_tomatoes (1 epoch, 2 threads) in every mode, reduced to what must not change across a
# restructuring: summary.json's metrics and the SHA-256 of model.safetensors.
# Usage: bash bench/refactor/record.sh OUT_DIR   (needs ../shared; builds src/Tool in Release)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:?output folder}
shared=${MIXUP_BERT_SHARED:-../shared}
model=$shared/hf/sentence-transformers/all-MiniLM-L6-v2/resolve/main
data=$shared/hf/datasets/cornell-movie-review-data/rotten_tomatoes/resolve/main
dotnet build src/Tool -c Release -v q -nologo >/dev/null
tool=(dotnet src/Tool/bin/Release/net10.0/mixup-bert.dll)
mkdir -p "$out"
for mode in baseline mixup tmix senmix; do
  run=$(mktemp -d)/run
  "${tool[@]}" train --model "$model" --dataset "$data" --mode "$mode" --train-size 512 --epochs 1 \
    --threads 2 --seed 42 --backend cpu --output "$run" >/dev/null
  # drop the wall-clock fields: they are the only ones that may differ between identical runs
  python3 - "$run/summary.json" > "$out/$mode.summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
def strip(o):
    if isinstance(o, dict):
        return {k: strip(v) for k, v in o.items() if not any(t in k for t in ("time", "seconds", "per_second", "samples_per", "runtime"))}
    if isinstance(o, list):
        return [strip(v) for v in o]
    return o
print(json.dumps(strip(s), indent=1, sort_keys=True))
PY
  echo "$(sha256sum < "$run/model.safetensors" | cut -c1-64)  $mode/model.safetensors" >> "$out/sha256.txt"
  rm -rf "$(dirname "$run")"
done
cat "$out/sha256.txt"
