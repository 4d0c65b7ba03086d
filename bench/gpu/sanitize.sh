#!/usr/bin/env bash
# compute-sanitizer over the self-test, sized to fit a device call: memcheck (out-of-bounds and misaligned
# accesses) over every check, then racecheck (shared-memory hazards) over the checks whose kernels use shared
# memory, selected with `selftest --only` (the op checks, not the whole training steps). Racecheck over
# the whole self-test did not finish in 40 s on an H200 (2026-12-04): the float32 attention at 1 × 512 alone
# took 17 s under it. Each tool runs under its own time limit (MEMCHECK_S, RACECHECK_S); a tool that runs
# out says so and the script exits non-zero. On an H200 (2026-12-04, fifth session) both finished within
# 63 s (memcheck 5 s): the limits are ample.
# Alone: bash bench/gpu/prepare.sh here; on the GPU machine, carrying .devcheck:
#   bash bench/gpu/sanitize.sh > $OUT/sanitize.log 2>&1
set -uo pipefail
source "$(dirname "$0")/lib.sh"
out=${OUT:-$PWD/check-out}
mkdir -p "$out"
require_tool
use_cublas
cs=$(cuda_tool compute-sanitizer)
[ -n "$cs" ] || { echo "no compute-sanitizer on this machine"; exit 2; }
# every op check (the train steps run the same kernels again): the attention kernels, LayerNorm, and every
# kernel whose sums end in add_chunk_partials or a block sum use shared memory
shared_memory_checks=${ONLY:-embedding,layernorm,linear,elementwise,attention,cross-entropy,row norm,clip and adamw,adamw over tensors}
failed=0
# sanitize NAME SECONDS ARGS...: one compute-sanitizer run, its log in $out/NAME.txt
sanitize() {
  local name=$1 seconds=$2; shift 2
  echo "[$(date -u +%T)] == $name (at most $seconds s)"
  timeout "$seconds" "$cs" "$@" >"$out/$name.txt" 2>&1
  local status=$?
  grep -E "^selftest:|ERROR SUMMARY|RACECHECK SUMMARY|^FAIL" "$out/$name.txt"
  case $status in
    0) ;;
    124) echo "$name: ran out of its $seconds s (not finished: no verdict)"; failed=1 ;;
    *) echo "$name: exit $status"; failed=1 ;;
  esac
}
sanitize memcheck "${MEMCHECK_S:-120}" --tool memcheck --error-exitcode 9 "$tool" selftest --backend cuda
sanitize racecheck "${RACECHECK_S:-300}" --tool racecheck --racecheck-report hazard --error-exitcode 9 "$tool" selftest --backend cuda \
  --only "$shared_memory_checks"
exit $failed
