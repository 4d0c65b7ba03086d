#!/bin/bash
# Issue 14's CPU grid (cut): run from a build of main at the commit named in the log
T=/tmp/wt-exp/src/Tool/bin/Release/net10.0/mixup-bert
M=/work/shared/hf/sentence-transformers/all-MiniLM-L6-v2/resolve/main
D=/work/shared/hf/datasets/cornell-movie-review-data/rotten_tomatoes/resolve/main
COMMON="--model $M --dataset $D --lrs 5e-5,1e-4 --min-steps 60 --epochs 3 --batch-size 32 --seed 42 --backend cpu --threads 2 --no-report --output /tmp/grid"
date -u; lscpu | grep "Model name"; grep -o -m1 "avx512f" /proc/cpuinfo
echo "== A: 64/class, baseline, mixup x alpha {0.2,1,2}, ssmix, 5 seeds"; date -u
$T compare $COMMON --modes baseline,mixup,ssmix --alphas 0.2,1,2 --seeds 5 --train-sizes 64/class || exit 1
echo "== B: 256/class, same modes, 3 seeds"; date -u
$T compare $COMMON --modes baseline,mixup,ssmix --alphas 0.2,1,2 --seeds 3 --train-sizes 256/class || exit 1
echo "== C: 64/class, tmix and senmix at alpha 1, 3 seeds"; date -u
$T compare $COMMON --modes tmix,senmix --alphas 1 --seeds 3 --train-sizes 64/class || exit 1
date -u; echo GRID DONE
