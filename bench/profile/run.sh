#!/usr/bin/env bash
# The profiling behind docs/perf.md's "Second round": per-op times of the all-MiniLM-L6-v2 forward,
# the GEMM block-size sweep, the GEMM with its packing switched off, and inference interleaved with
# ONNX Runtime; `blas` times the GEMM against OpenBLAS (libopenblas.so.0, Debian libopenblas0-pthread) at
# BERT's shapes, `peak` the FMA peak against OpenBLAS's best GEMM rate.
# Usage: bash bench/profile/run.sh [ops|sweep|packing|ort|blas|peak]...  (default: ops sweep packing ort).
# OPENBLAS_CORETYPE (e.g. Haswell) picks OpenBLAS's kernel; its default here is Haswell.
# ORT_SEQ=128 (or 64,128, the default) picks the `ort` mode's sequence lengths.
# To profile an older revision, run this script from a worktree of it:
#   git worktree add /tmp/old 3f817df && cp -r bench/profile /tmp/old/bench/ && bash /tmp/old/bench/profile/run.sh ops
# (the sweep and packing modes need the current Gemm.cs's constant names).
set -euo pipefail
cd "$(dirname "$0")"
# a copy of the GEMM with its block sizes as variables and switches to skip each part
sed -e 's/^namespace MixupBert.Kernels.Cpu;/namespace MixupBert.Profile;\nusing MixupBert.Kernels.Cpu;/' \
    -e 's/public static unsafe partial class Gemm$/public static unsafe partial class TunableGemm/' \
    -e 's/public static readonly GemmBlocking Blocking = /public static int Skip; public static GemmBlocking Blocking = /' \
    -e 's/^\( *\)PackB(transB,/\1if ((Skip \& 1) == 0) PackB(transB,/' \
    -e 's/^\( *\)PackA(transA,/\1if ((Skip \& 2) == 0) PackA(transA,/' \
    -e 's/^\( *\)MicroTile(packedA/\1if ((Skip \& 4) == 0) MicroTile(packedA/' \
    -e 's/Activations.Gelu(/MixupBert.Kernels.Cpu.Activations.Gelu(/g' \
    ../../src/Kernels/Cpu/Gemm.cs > Gemm.Tunable.cs
# its packing half (GemmPacking.cs), under the same class name
sed -e 's/^namespace MixupBert.Kernels.Cpu;/namespace MixupBert.Profile;\nusing MixupBert.Kernels.Cpu;/' \
    -e 's/public static unsafe partial class Gemm$/public static unsafe partial class TunableGemm/' \
    ../../src/Kernels/Cpu/GemmPacking.cs > GemmPacking.Tunable.cs
# the GEMM as it was before issue 13 (constant blocks kc 1536 × mc 64/MR·MR, scalar 6-row packing), for
# the `blas` table's before/after column; BEFORE_REV picks another revision
git show "${BEFORE_REV:-2350f35}:src/Kernels/Cpu/Gemm.cs" | sed \
    -e 's/^namespace MixupBert.Kernels.Cpu;/namespace MixupBert.Profile;\nusing MixupBert.Kernels.Cpu;/' \
    -e 's/public static unsafe class Gemm$/public static unsafe class GemmBefore/' \
    -e 's/Activations.Gelu(/MixupBert.Kernels.Cpu.Activations.Gelu(/g' > Gemm.Before.cs
if ! log=$(dotnet build -c Release -v q -o bin/out 2>&1); then echo "$log" >&2; exit 1; fi
export MIXUP_BERT_SHARED=${MIXUP_BERT_SHARED:-$(cd ../../.. && pwd)/shared}
# TieredCompilation off for the kernel measurements, so that every one compares fully optimised
# code from its first call; on (as users run it, with dynamic PGO) for the comparison with ONNX
# Runtime, which warms up first.
for mode in ${@:-ops sweep packing ort}; do
  if [ "$mode" = ort ]; then dotnet bin/out/MixupBert.Profile.dll ort
  elif [ "$mode" = blas ] || [ "$mode" = peak ]; then OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell} DOTNET_TieredCompilation=0 dotnet bin/out/MixupBert.Profile.dll "$mode"
  else DOTNET_TieredCompilation=0 dotnet bin/out/MixupBert.Profile.dll "$mode"; fi
done
