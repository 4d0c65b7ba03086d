#!/usr/bin/env bash
# How many of a kernel's global loads are in flight before its first float arithmetic waits on them, to
# compare commits without a GPU (a count is not a timing): for each REV (a commit, or - for the working
# tree), kernels.cu compiled as the shipped bf16 sm_90 code is (nvcc 11.8, clang-14), then for each kernel
# its registers and spills (ptxas) and its SASS as runs of global loads (L), float math (F: FADD, FMUL,
# FFMA), shuffles (S), barriers (B) and global stores (W): "L16 F128" issues 16 loads before the adds that
# use them, "L2 F9 L1 F8 …" keeps two in flight. ptxas, not the source, decides this order.
#   bash bench/gpu/sass_loads.sh a130d2e - -- column_sum_partial global_norm_clip first_token_backward
set -uo pipefail
cd "$(dirname "$0")/../.."
revs=(); while [ $# -gt 0 ] && [ "$1" != -- ]; do revs+=("$1"); shift; done
shift || { echo "usage: sass_loads.sh REV... -- KERNEL..." >&2; exit 2; }
work=$(mktemp -d)
for rev in "${revs[@]}"; do
  src=$work/$rev-src; mkdir -p "$src"
  if [ "$rev" = - ]; then cp -r kernels.cu kernels "$src/"; else git archive "$rev" kernels.cu kernels | tar -x -C "$src"; fi
  nvcc -ccbin clang-14 -std=c++17 -O3 -cubin -arch=sm_90 -DMIXUP_BF16 -Xptxas -v -o "$work/k.cubin" "$src/kernels.cu" 2> "$work/ptxas.txt" || exit 1
  echo "== ${rev/-/the working tree}"
  for f in "$@"; do
    regs=$(grep -A3 "entry function '$f'" "$work/ptxas.txt" | grep -oE "Used [0-9]+ registers|[0-9]+ bytes spill stores" | paste -sd, -)
    runs=$(cuobjdump -sass -fun "$f" "$work/k.cubin" | grep -oE "(LDG[.A-Z0-9]*|FADD|FMUL|FFMA|SHFL[.A-Z]*|BAR|STG[.A-Z0-9]*)" \
      | sed -E 's/^LDG.*/L/; s/^(FADD|FMUL|FFMA)$/F/; s/^SHFL.*/S/; s/^STG.*/W/; s/^BAR/B/' | uniq -c | awk '{printf "%s%s ", $2, $1}' | cut -c1-160)
    printf "  %-24s %s\n    %s\n" "$f" "$regs" "$runs"
  done
done
rm -rf "$work"
