#!/usr/bin/env bash
# bf16's accuracy parity (issue 12): all-MiniLM-L6-v2 fine-tuned on the full rotten_tomatoes with the
# default options, 5 seeds, once in fp32 and once in bf16 on the same GPU; the paired test-accuracy
# differences with a 95% t interval (goal: within 0.5 point). The second device call, on the machine
# the first (bench/gpu/check.sh) left warm:
#   bash bench/gpu/prepare_parity.sh          # here, after prepare.sh
#   device run, carry [".devcheck-parity"], timeout_s 540:  bash bench/gpu/parity.sh
# BACKEND=cpu PRECISIONS=fp32,fp32 SEEDS=2 EXTRA="--per-class 16 --epochs 1" bash bench/gpu/parity.sh
# runs the same plumbing on a CPU (a dry run of the script, not a measurement).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
out=${OUT:-$PWD/parity-out}
backend=${BACKEND:-cuda}
precisions=${PRECISIONS:-fp32,bf16}
seeds=${SEEDS:-5}
require_tool "the machine is not the warm one bench/gpu/check.sh ran on; run that call again first"
[ -d .devcheck-parity/minilm ] || { echo "no .devcheck-parity: run bench/gpu/prepare_parity.sh and carry .devcheck-parity" >&2; exit 2; }
mkdir -p "$out"
failed=0
IFS=, read -ra list <<< "$precisions"
for i in "${!list[@]}"; do
  p=${list[$i]}
  echo "[$(date -u +%T)] == compare baseline, $seeds seeds, precision $p"
  # shellcheck disable=SC2086
  "$tool" compare --model .devcheck-parity/minilm --dataset .devcheck-parity/rotten_tomatoes --modes baseline --seeds "$seeds" \
    --backend "$backend" --precision "$p" --output "$out/parity-$i-$p" ${EXTRA:-} 2>&1 | tail -n 25 | tee "$out/parity-$i-$p.txt"
  status=${PIPESTATUS[0]}
  echo "[$(date -u +%T)] == precision $p: exit $status"
  [ "$status" -eq 0 ] || failed=1
done
python3 - "$out" "${list[@]}" <<'PY'
import csv, math, os, sys
out, precisions = sys.argv[1], sys.argv[2:]
def accuracies(i, p):
    path = os.path.join(out, f"parity-{i}-{p}", "runs.csv")
    if not os.path.exists(path): return {}
    return {int(r["seed"]): float(r["test_accuracy"]) for r in csv.DictReader(open(path)) if r["test_accuracy"]}
a, b = accuracies(0, precisions[0]), accuracies(1, precisions[1])
seeds = sorted(set(a) & set(b))
t975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
print(f"\n== parity: test accuracy, {precisions[1]} - {precisions[0]}, paired by seed")
for s in seeds: print(f"seed {s}: {precisions[0]} {a[s]:.4f}  {precisions[1]} {b[s]:.4f}  diff {100 * (b[s] - a[s]):+.2f} pt")
if len(seeds) >= 2:
    d = [100 * (b[s] - a[s]) for s in seeds]
    mean = sum(d) / len(d); sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (len(d) - 1)); half = t975.get(len(d) - 1, 2.0) * sd / math.sqrt(len(d))
    print(f"mean {mean:+.2f} pt, 95% CI [{mean - half:+.2f}, {mean + half:+.2f}] (n = {len(d)}); goal: within 0.5 point")
else:
    print("fewer than two paired seeds: no interval")
PY
exit $failed
