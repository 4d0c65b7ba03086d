using System.Runtime.InteropServices;

namespace MixupBert.Kernels.Cuda;

/// <summary>cuBLAS bindings (create, stream, math mode, SGEMM and GemmEx, plain and strided-batched).</summary>
internal static unsafe partial class CuBlas
{
    public const string Library = "cublas";

    static CuBlas() => NativeLibraries.Register();

    public const int OpN = 0, OpT = 1;
    public const int DefaultMath = 0, Tf32TensorOpMath = 3;
    public const int ComputeF32 = 68, ComputeF32FastTf32 = 77; // cublasComputeType_t
    public const int DataR32F = 0, DataR16BF = 14;             // cudaDataType CUDA_R_32F, CUDA_R_16BF
    public const int GemmDefault = -1;                         // cublasGemmAlgo_t CUBLAS_GEMM_DEFAULT

    [LibraryImport(Library, EntryPoint = "cublasCreate_v2")] public static partial int cublasCreate(out nint handle);
    [LibraryImport(Library, EntryPoint = "cublasDestroy_v2")] public static partial int cublasDestroy(nint handle);
    [LibraryImport(Library, EntryPoint = "cublasSetStream_v2")] public static partial int cublasSetStream(nint handle, nint stream);
    [LibraryImport(Library)] public static partial int cublasSetMathMode(nint handle, int mode);
    [LibraryImport(Library, EntryPoint = "cublasSgemm_v2")]
    public static partial int cublasSgemm(nint handle, int transa, int transb, int m, int n, int k, float* alpha,
        nint a, int lda, nint b, int ldb, float* beta, nint c, int ldc);
    [LibraryImport(Library)]
    public static partial int cublasSgemmStridedBatched(nint handle, int transa, int transb, int m, int n, int k, float* alpha,
        nint a, int lda, long strideA, nint b, int ldb, long strideB, float* beta, nint c, int ldc, long strideC, int batch);
    [LibraryImport(Library)]
    public static partial int cublasGemmEx(nint handle, int transa, int transb, int m, int n, int k, void* alpha,
        nint a, int aType, int lda, nint b, int bType, int ldb, void* beta, nint c, int cType, int ldc, int computeType, int algo);
    [LibraryImport(Library)]
    public static partial int cublasGemmStridedBatchedEx(nint handle, int transa, int transb, int m, int n, int k, void* alpha,
        nint a, int aType, int lda, long strideA, nint b, int bType, int ldb, long strideB, void* beta,
        nint c, int cType, int ldc, long strideC, int batch, int computeType, int algo);

    /// <summary>CUBLAS_STATUS_ALLOC_FAILED: cuBLAS could not allocate (its handle or a GEMM's workspace).</summary>
    public const int StatusAllocFailed = 3;

    public static void Check(int status, string call)
    {
        if (status == StatusAllocFailed) throw new GpuOutOfMemoryException($"cuBLAS: out of GPU memory in {call} (CUBLAS_STATUS_ALLOC_FAILED)");
        if (status != 0) throw new CudaException($"{call} failed: cublasStatus_t {status}");
    }
}

/// <summary>
/// Row-major GEMMs on cuBLAS, which is column-major: a row-major X is a column-major Xᵀ, so
/// C = op(A)·op(B) is computed as Cᵀ = op(B)ᵀ·op(A)ᵀ, i.e. with the operands swapped.
/// float32 GEMMs use TF32 tensor-op math (cublasGemmEx with CUBLAS_COMPUTE_32F_FAST_TF32) when enabled;
/// GEMMs with bfloat16 operands run on bf16 tensor cores with float32 accumulation (CUBLAS_COMPUTE_32F),
/// their output bfloat16 or float32 (the weight gradients).
/// </summary>
internal sealed unsafe class CuBlasGemm(nint handle, bool tf32) : IGpuBlas
{
    public bool Tf32 { get; } = tf32;

    private static int Data(DType t) => t == DType.BF16 ? CuBlas.DataR16BF : CuBlas.DataR32F;

    public void Gemm(bool transA, bool transB, int m, int n, int k, nint a, int lda, nint b, int ldb, nint c, int ldc, bool accumulate, GemmTypes types)
    {
        float alpha = 1f, beta = accumulate ? 1f : 0f;
        int opA = transA ? CuBlas.OpT : CuBlas.OpN, opB = transB ? CuBlas.OpT : CuBlas.OpN;
        if (types != GemmTypes.F32)
            CuBlas.Check(CuBlas.cublasGemmEx(handle, opB, opA, n, m, k, &alpha, b, Data(types.Operands), ldb, a, Data(types.Operands), lda,
                &beta, c, Data(types.Output), ldc, CuBlas.ComputeF32, CuBlas.GemmDefault), "cublasGemmEx (bf16)");
        else if (Tf32)
            CuBlas.Check(CuBlas.cublasGemmEx(handle, opB, opA, n, m, k, &alpha, b, CuBlas.DataR32F, ldb, a, CuBlas.DataR32F, lda,
                &beta, c, CuBlas.DataR32F, ldc, CuBlas.ComputeF32FastTf32, CuBlas.GemmDefault), "cublasGemmEx");
        else
            CuBlas.Check(CuBlas.cublasSgemm(handle, opB, opA, n, m, k, &alpha, b, ldb, a, lda, &beta, c, ldc), "cublasSgemm");
    }

    public void GemmStridedBatched(bool transA, bool transB, int m, int n, int k, nint a, int lda, long strideA,
        nint b, int ldb, long strideB, nint c, int ldc, long strideC, int batch, bool accumulate, GemmTypes types)
    {
        float alpha = 1f, beta = accumulate ? 1f : 0f;
        int opA = transA ? CuBlas.OpT : CuBlas.OpN, opB = transB ? CuBlas.OpT : CuBlas.OpN;
        if (types != GemmTypes.F32)
            CuBlas.Check(CuBlas.cublasGemmStridedBatchedEx(handle, opB, opA, n, m, k, &alpha, b, Data(types.Operands), ldb, strideB,
                a, Data(types.Operands), lda, strideA, &beta, c, Data(types.Output), ldc, strideC, batch, CuBlas.ComputeF32, CuBlas.GemmDefault),
                "cublasGemmStridedBatchedEx (bf16)");
        else if (Tf32)
            CuBlas.Check(CuBlas.cublasGemmStridedBatchedEx(handle, opB, opA, n, m, k, &alpha, b, CuBlas.DataR32F, ldb, strideB,
                a, CuBlas.DataR32F, lda, strideA, &beta, c, CuBlas.DataR32F, ldc, strideC, batch, CuBlas.ComputeF32FastTf32, CuBlas.GemmDefault),
                "cublasGemmStridedBatchedEx");
        else
            CuBlas.Check(CuBlas.cublasSgemmStridedBatched(handle, opB, opA, n, m, k, &alpha, b, ldb, strideB, a, lda, strideA,
                &beta, c, ldc, strideC, batch), "cublasSgemmStridedBatched");
    }
}
