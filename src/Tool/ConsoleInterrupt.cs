using System.Runtime.InteropServices;

namespace MixupBert.Tool;

/// <summary>
/// Ctrl-C (SIGINT) and SIGTERM for the whole process: the first asks every loop to stop after its
/// current step, through one token that every run of a command (compare's grid included) observes, so
/// a training run saves its checkpoint either way. SIGTERM is what a job scheduler (Slurm's time limit
/// and scancel), `docker stop` and Kubernetes send before they kill: without a handler the runtime
/// would end the process at once, losing the training since the last checkpoint.
/// </summary>
public static class ConsoleInterrupt
{
    private static readonly CancellationTokenSource source = new();
    private static int registered;
    private static int exitCode = ErrorReport.Interrupted;
    private static PosixSignalRegistration? terminate; // kept: a collected registration is unregistered

    public static CancellationToken Token
    {
        get
        {
            if (Interlocked.Exchange(ref registered, 1) == 0)
            {
                Console.CancelKeyPress += (_, e) =>
                {
                    e.Cancel = true; // stop cleanly ourselves
                    Stop("Ctrl-C", ErrorReport.Interrupted);
                };
                if (!OperatingSystem.IsWindows())
                    terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
                    {
                        // the runtime's default would end the process at once. A repeat is ignored too: a batch script
                        // that forwards Slurm's SIGTERM delivers two at once, and the checkpoint must still be saved
                        // (a scheduler's SIGKILL ends a stop that takes too long)
                        context.Cancel = true;
                        Stop("SIGTERM", ErrorReport.Terminated);
                    });
            }
            return source.Token;
        }
    }

    /// <summary>The exit code of a stopped command: 130 after Ctrl-C, 143 after SIGTERM (128 + the
    /// signal, as a shell reports them).</summary>
    public static int ExitCode => Volatile.Read(ref exitCode);

    private static void Stop(string what, int code)
    {
        if (!source.IsCancellationRequested)
        {
            Volatile.Write(ref exitCode, code);
            Console.Error.WriteLine($"{what}: stopping after this step...");
        }
        source.Cancel();
    }
}
