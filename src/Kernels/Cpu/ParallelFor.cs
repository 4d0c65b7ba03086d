namespace MixupBert.Kernels.Cpu;

/// <summary>
/// Runs body(begin, end) over [0, count) split into fixed ranges across the shared pool, without
/// allocating: the body is a struct, copied into a cached job per body type and calling thread.
/// Small counts run inline.
/// </summary>
public static class ParallelFor
{
    public interface IRangeBody
    {
        void Run(int begin, int end);
    }

    private sealed class Job<TBody> : IParallelJob where TBody : struct, IRangeBody
    {
        [ThreadStatic] public static Job<TBody>? ForThisThread;
        public TBody Body;
        public int Count, Grain;
        public void Execute(int worker, int workerCount)
        {
            var (b, e) = WorkerPool.Share(Count, worker, workerCount, Grain);
            if (e > b) Body.Run(b, e);
        }
    }

    /// <summary>Splits [0,count) into one range per worker (in multiples of grain) when the work is
    /// worth it (<paramref name="workPerItem"/> × count above a threshold), else runs it inline.</summary>
    public static void Run<TBody>(int count, TBody body, long workPerItem = 1, int grain = 1) where TBody : struct, IRangeBody
    {
        var pool = WorkerPool.Shared;
        if (count <= grain || pool.WorkerCount == 1 || workPerItem * count < 32_768)
        {
            body.Run(0, count);
            return;
        }
        var job = Job<TBody>.ForThisThread ??= new Job<TBody>();
        job.Body = body;
        job.Count = count;
        job.Grain = grain;
        pool.Run(job);
        job.Body = default;
    }
}
