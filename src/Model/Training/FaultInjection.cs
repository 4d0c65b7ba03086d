using System.Runtime.InteropServices;

namespace MixupBert.Model.Training;

/// <summary>
/// TEST-ONLY hooks, read from the environment, so that the fault-injection tests can stop the real
/// command at an exact point instead of racing it with a timer. Unset (as for every user), they do
/// nothing. <c>MIXUP_BERT_TEST_KILL_AT_WRITE=N</c>: the process kills itself with SIGKILL (what
/// kill -9 does: no finally blocks, no flushing) at the N-th write point of the run folder (1-based,
/// counted over the whole process); <c>MIXUP_BERT_TEST_FAIL_AT_WRITE=N</c>: an IOException ("no
/// space left on device") is thrown there instead, as a full disk does;
/// <c>MIXUP_BERT_TEST_WRITE_LOG=FILE</c>: each write point's name is appended to FILE, so a test knows
/// how many there are; <c>MIXUP_BERT_TEST_KILL_AT_STEP=S</c> / <c>MIXUP_BERT_TEST_INTERRUPT_AT_STEP=S</c>:
/// SIGKILL / SIGINT (Ctrl-C) right after training step S.
/// </summary>
public static class FaultInjection
{
    private static readonly long killAtWrite = Read("MIXUP_BERT_TEST_KILL_AT_WRITE");
    private static readonly long failAtWrite = Read("MIXUP_BERT_TEST_FAIL_AT_WRITE");
    private static readonly long killAtStep = Read("MIXUP_BERT_TEST_KILL_AT_STEP");
    private static readonly long interruptAtStep = Read("MIXUP_BERT_TEST_INTERRUPT_AT_STEP");
    private static readonly string? writeLog = Environment.GetEnvironmentVariable("MIXUP_BERT_TEST_WRITE_LOG");
    private static long writes;

    private static long Read(string name) => long.TryParse(Environment.GetEnvironmentVariable(name), out long n) ? n : -1;

    /// <summary>A point between two writes of the run folder, named for the test log.</summary>
    public static void WritePoint(string name)
    {
        long n = Interlocked.Increment(ref writes);
        if (writeLog != null) File.AppendAllText(writeLog, $"{n} {name}\n");
        if (n == killAtWrite) KillSelf(9);
        if (n == failAtWrite) throw new IOException($"No space left on device (test hook MIXUP_BERT_TEST_FAIL_AT_WRITE at {name})");
    }

    /// <summary>Right after training step <paramref name="step"/> has been started (queued on a GPU; the
    /// trainer reads a step's loss one step later, so a kill here loses the metrics rows of steps S − 1
    /// and S, which a resume writes again). An injected Ctrl-C waits until it has been seen, so the run
    /// stops at a known step: the trainer finishes the started steps and saves at S.</summary>
    public static void AfterStep(long step, CancellationToken cancel)
    {
        if (step == killAtStep) KillSelf(9);
        if (step == interruptAtStep)
        {
            KillSelf(2);
            cancel.WaitHandle.WaitOne(TimeSpan.FromSeconds(10));
        }
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    private static void KillSelf(int signal)
    {
        if (OperatingSystem.IsWindows()) Environment.FailFast($"test hook: signal {signal}");
        Kill(Environment.ProcessId, signal);
        if (signal == 9) Thread.Sleep(Timeout.Infinite); // SIGKILL is not handled: wait for it to land
    }
}
