namespace MixupBert.Kernels.Cuda;

/// <summary>Cpu.Embedding on the device (kernels/embedding.cuh); partner 0: no word mixing.</summary>
public static class Embedding
{
    public static void Forward(GpuContext g, nint ids, nint typeIds, nint word, nint position, nint type, nint output,
        int batch, int seqLen, int channels, nint partner = 0, nint lambda = 0)
        => g.Launch("embedding_forward", new KernelArgs().Ptr(output).Ptr(ids).Ptr(typeIds).Ptr(word).Ptr(position).Ptr(type)
            .Ptr(partner).Ptr(lambda).Int(batch).Int(seqLen).Int(channels), new Dim3((uint)(batch * seqLen)), new Dim3(GpuContext.RowThreads));

    public static void Backward(GpuContext g, nint dOutput, nint ids, nint typeIds, nint dWord, nint dPosition, nint dType,
        int batch, int seqLen, int channels, nint partner = 0, nint lambda = 0)
        => g.Launch("embedding_backward", new KernelArgs().Ptr(dWord).Ptr(dPosition).Ptr(dType).Ptr(dOutput).Ptr(ids).Ptr(typeIds)
            .Ptr(partner).Ptr(lambda).Int(batch).Int(seqLen).Int(channels), new Dim3((uint)((channels + 127) / 128)), new Dim3(128));
}
