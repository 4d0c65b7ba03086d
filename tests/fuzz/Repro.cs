namespace MixupBert.Fuzz;

/// <summary>Runs a target on saved inputs outside afl, printing each finding's exception, to triage and to check fixes.</summary>
public static class Repro
{
    public static int Run(Action<Stream> target, IEnumerable<string> files)
    {
        int failures = 0;
        Targets.ShowRejections = true;
        foreach (var file in files)
        {
            var started = System.Diagnostics.Stopwatch.StartNew();
            try
            {
                using var input = File.OpenRead(file);
                target(input);
                Console.WriteLine($"ok    {file} ({started.ElapsedMilliseconds} ms)");
            }
            catch (Exception e)
            {
                failures++;
                Console.WriteLine($"FAIL  {file}: {e.GetType().Name}: {e.Message}");
                Console.WriteLine(e.StackTrace?.Split('\n').Take(6).Aggregate((a, b) => a + "\n" + b));
            }
        }
        return failures == 0 ? 0 : 1;
    }
}
