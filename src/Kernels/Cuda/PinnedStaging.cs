namespace MixupBert.Kernels.Cuda;

/// <summary>
/// A page-locked host buffer for uploads that wait for nothing: the host fills it, enqueues
/// <see cref="IGpu.CopyToDeviceAsync"/> and goes on launching kernels; the stream copies it when it
/// gets there. It may be refilled (or grown) only once the host has waited for the stream past that
/// copy: an event recorded after it, or a call that waits for the whole stream. A pipelined caller
/// therefore keeps two and alternates (GpuBertEngine's step slots, Embedding.Buckets' staging): step
/// n + 1 fills one while the stream may still read the other, which step n filled.
/// </summary>
public sealed unsafe class PinnedStaging(IGpu gpu) : IDisposable
{
    private nint host;
    private long bytes;

    /// <summary>The first <paramref name="count"/> elements, grown (contents lost) when too small.</summary>
    public Span<T> Get<T>(int count) where T : unmanaged
    {
        long need = (long)count * sizeof(T);
        if (need > bytes)
        {
            long grown = Math.Max(need, 2 * bytes);
            if (host != 0) gpu.FreeHost(host);
            host = 0; bytes = 0; // nothing dangles if the allocation below throws
            host = gpu.AllocHost(grown);
            bytes = grown;
        }
        return new Span<T>((void*)host, count);
    }

    /// <summary>Enqueues the copy of the first <paramref name="count"/> elements to <paramref name="device"/>.</summary>
    public void Upload<T>(nint device, int count) where T : unmanaged => gpu.CopyToDeviceAsync(device, host, (long)count * sizeof(T));

    public void Dispose()
    {
        if (host != 0) gpu.FreeHost(host);
        host = 0; bytes = 0;
    }
}
