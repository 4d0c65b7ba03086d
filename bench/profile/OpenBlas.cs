using System.Runtime.InteropServices;

namespace MixupBert.Profile;

/// <summary>OpenBLAS's cblas_sgemm (Debian libopenblas0-pthread: libopenblas.so.0), the yardstick
/// for the GEMM. OPENBLAS_CORETYPE must be set before the first call (run.sh sets Haswell).</summary>
internal static unsafe partial class OpenBlas
{
    private const string Lib = "libopenblas.so.0";
    private const int RowMajor = 101, NoTrans = 111, Trans = 112;

    [LibraryImport(Lib, EntryPoint = "cblas_sgemm")]
    private static partial void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc);

    [LibraryImport(Lib, EntryPoint = "openblas_set_num_threads")]
    private static partial void openblas_set_num_threads(int threads);

    [LibraryImport(Lib, EntryPoint = "openblas_get_config")]
    private static partial nint openblas_get_config();

    [LibraryImport(Lib, EntryPoint = "openblas_get_corename")]
    private static partial nint openblas_get_corename();

    public static void SetThreads(int n) => openblas_set_num_threads(n);

    public static string Config() => $"{Marshal.PtrToStringAnsi(openblas_get_config())}, core {Marshal.PtrToStringAnsi(openblas_get_corename())}";

    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float[] a, int lda, float[] b, int ldb, float[] c, int ldc)
    {
        fixed (float* pa = a, pb = b, pc = c)
            cblas_sgemm(RowMajor, transA ? Trans : NoTrans, transB ? Trans : NoTrans, m, n, k, 1f, pa, lda, pb, ldb, 0f, pc, ldc);
    }
}
