using MixupBert.Kernels.Cuda;

namespace MixupBert.Tests.Cuda;

/// <summary>MIXUP_BERT_KERNELS(_BF16) replaces the embedded kernel image with a file (kernel development,
/// bench/gpu/variants.sh); unset, the embedded one is loaded; naming a missing file says so, naming the
/// variable and the path, before any GPU is touched.</summary>
public class KernelImageTests
{
    [Fact]
    public void TheVariableNamesTheFileThatIsLoaded()
    {
        string path = Path.Combine(Path.GetTempPath(), $"mixup-bert-kernels-{Guid.NewGuid():N}.cubin");
        byte[] image = [1, 2, 3, 4, 5];
        File.WriteAllBytes(path, image);
        try
        {
            Assert.Equal(image, CudaGpu.KernelImage(DType.BF16, v => v == CudaGpu.KernelsBf16Variable ? path : null));
            Assert.Equal(image, CudaGpu.KernelImage(DType.F32, v => v == CudaGpu.KernelsVariable ? path : null));
            // the other precision's variable does not replace this one's image
            Assert.Equal(CudaGpu.EmbeddedKernels(DType.F32), CudaGpu.KernelImage(DType.F32, v => v == CudaGpu.KernelsBf16Variable ? path : null));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void UnsetTheEmbeddedImageIsLoaded() =>
        Assert.Equal(CudaGpu.EmbeddedKernels(DType.BF16), CudaGpu.KernelImage(DType.BF16, _ => null));

    [Fact]
    public void AMissingFileIsNamed()
    {
        var e = Assert.Throws<CudaUnavailableException>(() => CudaGpu.KernelImage(DType.BF16, _ => "/nonexistent/variant.cubin"));
        Assert.Contains(CudaGpu.KernelsBf16Variable, e.Message);
        Assert.Contains("/nonexistent/variant.cubin", e.Message);
    }
}
