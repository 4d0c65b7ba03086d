#!/usr/bin/env bash
# Run HERE (the development machine) before bench/gpu/check.sh goes to the GPU machine, which has
# no .NET and no network. Fills .devcheck/ (git-ignored; name it in the device call's carry):
#   .devcheck/tool/mixup-bert            a self-contained publish of the tool (~55 MB with its native libraries)
#   .devcheck/bert-base-cased/config.json  bert-base-cased's shape (from the Hub mirror in ../shared)
#   .devcheck/tiny-classifier/           a small checkpoint written by the tool, for transformers to load
set -euo pipefail
cd "$(dirname "$0")/../.."
shared=${MIXUP_BERT_SHARED:-../shared}
rm -rf .devcheck && mkdir -p .devcheck/bert-base-cased .devcheck/tiny
# not trimmed: Parquet.Net and CsvHelper produce trim warnings (errors here), and a trimmed reader
# could fail at run time in the real-epoch stage; untrimmed and compressed it is about 55 MB with
# SkiaSharp's native libraries, under the device call's 64 MiB carry
dotnet publish src/Tool -c Release -r linux-x64 --self-contained -p:PublishSingleFile=true \
  -p:EnableCompressionInSingleFile=true -p:DebugType=none -o .devcheck/tool >/dev/null
env_out=$(.devcheck/tool/mixup-bert env); echo "$env_out"
case "$env_out" in *"cuda kernels: embedded"*) ;; *) echo "the published tool carries no CUDA kernels (was nvcc there?)" >&2; exit 1;; esac
cp "$shared/hf/google-bert/bert-base-cased/resolve/main/config.json" .devcheck/bert-base-cased/config.json
# the real-epoch stage: bert-base-cased's shape with MiniLM's vocabulary (the mirror has no bert-base
# weights or vocabulary), and rotten_tomatoes' three parquet files
mkdir -p .devcheck/bert-base-vocab .devcheck/rotten_tomatoes
python3 - "$shared/hf/google-bert/bert-base-cased/resolve/main/config.json" .devcheck/bert-base-vocab/config.json <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["vocab_size"] = 30522
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY
minilm="$shared/hf/sentence-transformers/all-MiniLM-L6-v2/resolve/main"
cp "$minilm/vocab.txt" "$minilm/tokenizer_config.json" .devcheck/bert-base-vocab/
cp "$shared"/hf/datasets/cornell-movie-review-data/rotten_tomatoes/resolve/main/*.parquet .devcheck/rotten_tomatoes/
cat > .devcheck/tiny/config.json <<'JSON'
{"model_type": "bert", "vocab_size": 99, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
 "intermediate_size": 37, "max_position_embeddings": 64, "type_vocab_size": 2, "hidden_act": "gelu"}
JSON
.devcheck/tool/mixup-bert convert --model .devcheck/tiny --random-init --labels neg,pos --output .devcheck/tiny-classifier
# the kernel variants that check.sh measures against each other (bench/gpu/variants.list)
grep -v '^#' bench/gpu/variants.list | while read -r name rev flags; do
  [ -n "$name" ] && bash bench/gpu/variants.sh build "$name" "$rev" $flags
done
# the device call carries at most 64 MiB
bytes=$(du -sb .devcheck | cut -f1)
[ "$bytes" -le $((64 << 20)) ] || { echo ".devcheck is $bytes bytes, over the device call's 64 MiB: fewer variants" >&2; exit 1; }
du -sh .devcheck
