#!/usr/bin/env bash
# Static instruction counts of the bf16 kernels, to compare commits without a GPU (a count is not a timing):
# for each REV (a commit, or - for the working tree), kernels.cu compiled as the shipped sm_90 code is
# (nvcc 11.8, clang-14), then
#   - the flash attention kernels with only their head-size-64 instance, and the instructions in each one's
#     key-tile loop (its largest backward branch, both tile-load paths included);
#   - the whole GELU and LayerNorm kernels' instructions;
#   - ptxas's registers and spills of the flash kernels with all their instances, and with the 64 one alone.
#   bash bench/gpu/sass_counts.sh a130d2e -
set -uo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
for rev in "$@"; do
  src=$work/$rev-src; mkdir -p "$src"
  if [ "$rev" = - ]; then cp -r kernels.cu kernels "$src/"; else git archive "$rev" kernels.cu kernels | tar -x -C "$src"; fi
  nvcc=(nvcc -ccbin clang-14 -std=c++17 -O3 -cubin -arch=sm_90 -DMIXUP_BF16)
  "${nvcc[@]}" -Xptxas -v -o "$work/all.cubin" "$src/kernels.cu" 2>&1 | grep -A3 "entry function 'attention_.*_flash'" \
    | grep -oE "entry function '[a-z_]+'|[0-9]+ bytes spill (stores|loads)|Used [0-9]+ registers" | paste -sd' ' | sed 's/entry function/\n /g' > "$work/ptxas.txt"
  # the head-size-64 instance alone (older commits had one body for every size: unchanged)
  python3 - "$src/kernels/attention_flash.cuh" <<'PY'
import re, sys
p = sys.argv[1]; s = open(p).read()
s = re.sub(r"switch \(C / H\) \{.*?\}", "switch (C / H) { case 64: CALL(64); break; }", s, count=1, flags=re.S)
open(p, "w").write(s)
PY
  "${nvcc[@]}" -Xptxas -v -o "$work/d64.cubin" "$src/kernels.cu" 2> "$work/ptxas64.log" || { cat "$work/ptxas64.log"; exit 1; }
  grep -A3 "entry function 'attention_.*_flash'" "$work/ptxas64.log" \
    | grep -oE "entry function '[a-z_]+'|[0-9]+ bytes spill (stores|loads)|Used [0-9]+ registers" | paste -sd' ' | sed 's/entry function/\n /g' > "$work/ptxas64.txt"
  echo "== ${rev/-/the working tree}"
  for f in attention_forward_flash attention_backward_dq_flash attention_backward_dkv_flash; do
    cuobjdump -sass -fun "$f" "$work/d64.cubin" | python3 -c '
import re, sys
ins = [(int(m.group(1), 16), m.group(2)) for m in (re.match(r"\s+/\*([0-9a-f]+)\*/\s+(.*?);", l) for l in sys.stdin) if m]
at = {a: i for i, (a, _) in enumerate(ins)}
loops = [(int(m.group(1), 16), a) for a, t in ins for m in [re.search(r"BRA (?:!?U?P\w+, )?0x([0-9a-f]+)", t)] if m and int(m.group(1), 16) < a]
lo, hi = max(loops, key=lambda l: l[1] - l[0])
print(f"  {sys.argv[1]:32s} key-tile loop {at[hi] - at[lo] + 1:5d} instructions ({len(ins)} in all)")' "$f"
  done
  for f in bias_gelu_forward gelu_backward layernorm_forward_warp layernorm_backward_warp; do
    printf "  %-32s %5d instructions\n" "$f" "$(cuobjdump -sass -fun "$f" "$work/all.cubin" | grep -cE '^\s+/\*[0-9a-f]+\*/')"
  done
  sed 's/^/  ptxas, every instance:/' "$work/ptxas.txt" | grep -v "every instance:$"
  sed 's/^/  ptxas, head size 64 alone:/' "$work/ptxas64.txt" | grep -v "alone:$"
done
rm -rf "$work"
