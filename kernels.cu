// kernels.cu: the CUDA kernels of mixup-bert, one translation unit that includes one file per op
// family. Each family mirrors a CPU file op by op, and its C# launcher carries the CPU op's name:
//
//   kernels/embedding.cuh      src/Kernels/Cpu/Embedding.cs     src/Kernels/Cuda/Embedding.cs
//   kernels/layernorm.cuh      src/Kernels/Cpu/LayerNorm.cs     src/Kernels/Cuda/LayerNorm.cs
//   kernels/linear.cuh         src/Kernels/Cpu/Linear.cs        src/Kernels/Cuda/Linear.cs   (GEMMs: cuBLAS)
//   kernels/activations.cuh    src/Kernels/Cpu/Activations.cs   src/Kernels/Cuda/Activations.cs
//   kernels/dropout.cuh        src/Kernels/Cpu/Dropout.cs       src/Kernels/Cuda/Dropout.cs
//   kernels/attention.cuh      src/Kernels/Cpu/Attention.cs     src/Kernels/Cuda/Attention.cs
//   kernels/attention_mma.cuh  (the same)                        (the same; bf16 only: tensor cores, WMMA)
//   kernels/attention_flash.cuh (the same)                       (the same; bf16 only: tensor cores, mma.sync)
//   kernels/pooling.cuh        src/Kernels/Cpu/FirstToken.cs    src/Kernels/Cuda/FirstToken.cs
//   kernels/mixup.cuh          src/Kernels/Cpu/Mixup.cs         src/Kernels/Cuda/Mixup.cs
//   kernels/cross_entropy.cuh  src/Kernels/Cpu/CrossEntropy.cs  src/Kernels/Cuda/CrossEntropy.cs
//   kernels/rownorm.cuh        src/Kernels/Cpu/RowNorm.cs       src/Kernels/Cuda/RowNorm.cs
//   kernels/adamw.cuh          src/Kernels/Cpu/AdamW.cs         src/Kernels/Cuda/AdamW.cs
//   kernels/common.cuh         reductions and the dropout hash they share
//
// Every kernel is checked against its CPU op: in CI by compiling this file a second time with the
// host C++ compiler against tests/CudaShim/cuda_shim.h, and on a GPU by `mixup-bert selftest
// --backend cuda` (src/Model/Diagnostics).
//
// Rules that keep the kernels runnable on the CPU shim as well as on a GPU:
//  - every kernel is extern "C" (looked up by name) and takes pointers, ints, longs, floats or
//    unsigned, outputs first (as llm.c); the C# launchers take the CPU op's order (inputs, then outputs);
//  - a thread never returns before a __syncthreads() or warp shuffle that the rest of its block
//    still reaches (guard work with `if (valid)` instead), and shuffles use the full warp;
//  - no atomics: every reduction has a fixed order, so results are deterministic run to run.

#include "kernels/common.cuh"
#include "kernels/embedding.cuh"
#include "kernels/layernorm.cuh"
#include "kernels/linear.cuh"
#include "kernels/activations.cuh"
#include "kernels/dropout.cuh"
#include "kernels/attention.cuh"
#ifdef MIXUP_BF16
#include "kernels/attention_mma.cuh"   // tensor cores take no float32 operands (only TF32's rounding)
#include "kernels/attention_flash.cuh"
#endif
#include "kernels/pooling.cuh"
#include "kernels/mixup.cuh"
#include "kernels/cross_entropy.cuh"
#include "kernels/rownorm.cuh"
#include "kernels/adamw.cuh"
