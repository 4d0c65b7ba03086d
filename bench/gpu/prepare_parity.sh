#!/usr/bin/env bash
# Run HERE after bench/gpu/prepare.sh, for the second device call (bench/gpu/parity.sh): the tool
# (54 MB, in .devcheck) and all-MiniLM-L6-v2 (87 MB in float32) do not fit one call's 64 MiB carry,
# so the model travels as float16 (45 MB) in .devcheck-parity, with rotten_tomatoes, while the first
# call's .devcheck stays on the warm machine.
#   .devcheck-parity/minilm/            all-MiniLM-L6-v2 as BertForSequenceClassification, f16 on disk
#   .devcheck-parity/rotten_tomatoes/   the dataset's three parquet files
set -euo pipefail
source "$(dirname "$0")/lib.sh"
shared=${MIXUP_BERT_SHARED:-../shared}
require_tool "run bench/gpu/prepare.sh first"
rm -rf .devcheck-parity && mkdir -p .devcheck-parity/rotten_tomatoes
# both precisions start from the same f16-rounded weights and the same classifier (seed 42), so the
# pairs differ by the arithmetic alone
"$tool" convert --model "$shared/hf/sentence-transformers/all-MiniLM-L6-v2/resolve/main" --labels neg,pos --seed 42 \
  --dtype f16 --output .devcheck-parity/minilm
cp "$shared"/hf/datasets/cornell-movie-review-data/rotten_tomatoes/resolve/main/*.parquet .devcheck-parity/rotten_tomatoes/
du -sh .devcheck-parity
