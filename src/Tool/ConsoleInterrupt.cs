namespace MixupBert.Tool;

/// <summary>
/// Ctrl-C (SIGINT) for the whole process: the first press asks every loop to stop after its current
/// step, through one token that every run of a command (compare's grid included) observes.
/// </summary>
public static class ConsoleInterrupt
{
    private static readonly CancellationTokenSource source = new();
    private static int registered;

    public static CancellationToken Token
    {
        get
        {
            if (Interlocked.Exchange(ref registered, 1) == 0)
                Console.CancelKeyPress += (_, e) =>
                {
                    e.Cancel = true; // stop cleanly ourselves
                    if (!source.IsCancellationRequested) Console.Error.WriteLine("Ctrl-C: stopping after this step...");
                    source.Cancel();
                };
            return source.Token;
        }
    }
}
