using System.Runtime.ExceptionServices;

namespace MixupBert.Kernels.Cpu;

/// <summary>A piece of work split across the pool's workers; worker w of n does its share.</summary>
public interface IParallelJob
{
    void Execute(int worker, int workerCount);
}

/// <summary>
/// A fixed set of long-lived threads that run one <see cref="IParallelJob"/> at a time.
/// Unlike Parallel.For it allocates nothing per call (jobs are preallocated objects), never
/// oversubscribes (one thread per worker, the caller is worker 0), and a job always sees the same
/// worker count, so a kernel can partition work the same way on every call.
/// </summary>
public sealed class WorkerPool : IDisposable
{
    [ThreadStatic] private static bool insideJob;

    private readonly Thread[] threads;
    private readonly SemaphoreSlim[] start;
    private readonly CountdownEvent done;
    private IParallelJob? current;
    private ExceptionDispatchInfo? failure;
    private volatile bool stopping;
    private readonly Lock runLock = new();
    private readonly long[] workerAllocated;

    public WorkerPool(int workerCount)
    {
        if (workerCount < 1) throw new ArgumentOutOfRangeException(nameof(workerCount), "at least one worker");
        WorkerCount = workerCount;
        threads = new Thread[workerCount - 1];
        start = new SemaphoreSlim[workerCount - 1];
        done = new CountdownEvent(1);
        workerAllocated = new long[workerCount];
        for (int i = 0; i < threads.Length; i++)
        {
            int worker = i + 1;
            start[i] = new SemaphoreSlim(0);
            threads[i] = new Thread(() => Loop(worker)) { IsBackground = true, Name = $"mixup-bert worker {worker}" };
            threads[i].Start();
        }
    }

    public int WorkerCount { get; }

    private static WorkerPool? shared;

    /// <summary>The process-wide pool; sized by <see cref="ConfigureShared"/> or to the processor count.</summary>
    public static WorkerPool Shared => shared ??= new WorkerPool(Environment.ProcessorCount);

    /// <summary>Sets the worker count of the shared pool (the CLI's --threads).</summary>
    public static void ConfigureShared(int workerCount)
    {
        if (shared != null && shared.WorkerCount == workerCount) return;
        shared?.Dispose();
        shared = new WorkerPool(workerCount);
    }

    /// <summary>Runs the job on every worker and returns when all are done. Nested calls run serially.</summary>
    public void Run(IParallelJob job)
    {
        if (WorkerCount == 1 || insideJob)
        {
            job.Execute(0, 1);
            return;
        }
        lock (runLock) RunLocked(job);
    }

    private void RunLocked(IParallelJob job)
    {
        current = job;
        failure = null;
        done.Reset(WorkerCount - 1);
        for (int i = 0; i < start.Length; i++) start[i].Release();
        insideJob = true;
        try { job.Execute(0, WorkerCount); }
        catch (Exception e) { failure ??= ExceptionDispatchInfo.Capture(e); }
        finally { insideJob = false; }
        done.Wait();
        current = null;
        failure?.Throw();
    }

    private void Loop(int worker)
    {
        insideJob = true;
        while (true)
        {
            start[worker - 1].Wait();
            if (stopping) return;
            try { current!.Execute(worker, WorkerCount); }
            catch (Exception e) { failure ??= ExceptionDispatchInfo.Capture(e); }
            workerAllocated[worker] = GC.GetAllocatedBytesForCurrentThread();
            done.Signal();
        }
    }

    /// <summary>Bytes allocated so far on the pool's own threads (not the caller's), as of their last
    /// job: with the caller's GC.GetAllocatedBytesForCurrentThread, what a computation allocated.</summary>
    public long WorkerAllocatedBytes => workerAllocated.Sum();

    /// <summary>The half-open range [begin, end) of <paramref name="count"/> items that a worker owns,
    /// in multiples of <paramref name="grain"/> so that kernels keep whole tiles.</summary>
    public static (int Begin, int End) Share(int count, int worker, int workerCount, int grain = 1)
    {
        int units = (count + grain - 1) / grain;
        int begin = (int)((long)units * worker / workerCount) * grain;
        int end = (int)((long)units * (worker + 1) / workerCount) * grain;
        return (Math.Min(begin, count), Math.Min(end, count));
    }

    public void Dispose()
    {
        stopping = true;
        foreach (var s in start) s.Release();
        foreach (var t in threads) t.Join();
        foreach (var s in start) s.Dispose();
        done.Dispose();
    }
}
