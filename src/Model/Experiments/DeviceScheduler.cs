using System.Runtime.ExceptionServices;

namespace MixupBert.Model.Experiments;

/// <summary>What became of each run of a schedule: its exit code and the device it ran on (null: not started).</summary>
public sealed record ScheduleOutcome(int?[] Codes, int?[] Devices)
{
    /// <summary>The runs that were never started (a run failed or Ctrl-C stopped the grid first).</summary>
    public int NotStarted => Codes.Count(c => c == null);
}

/// <summary>
/// Runs a list of runs on several devices at once (compare --devices): one worker thread per listed
/// device, each taking the next run not yet taken, in list order, and running it on its own device until
/// the list is empty; a device is never given two runs at once (a device listed twice has two workers).
/// When a run returns a code other than 0, or <paramref name="stop"/> holds, no further run is started;
/// the runs under way finish (Ctrl-C stops them at their next step) and the outcome says which ran.
/// </summary>
public static class DeviceScheduler
{
    public static ScheduleOutcome Run<T>(IReadOnlyList<T> runs, IReadOnlyList<int> devices, Func<T, int, int> run, Func<bool>? stop = null)
    {
        if (devices.Count == 0) throw new ArgumentException("no device to run on");
        var codes = new int?[runs.Count];
        var onDevice = new int?[runs.Count];
        int next = -1, failed = 0;
        ExceptionDispatchInfo? error = null;
        var workers = devices.Select(device => new Thread(() =>
        {
            try
            {
                while (Volatile.Read(ref failed) == 0 && !(stop?.Invoke() ?? false))
                {
                    int i = Interlocked.Increment(ref next);
                    if (i >= runs.Count) return;
                    onDevice[i] = device;
                    int code = run(runs[i], device);
                    codes[i] = code;
                    if (code != 0) Volatile.Write(ref failed, 1);
                }
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref error, ExceptionDispatchInfo.Capture(e), null);
                Volatile.Write(ref failed, 1);
            }
        }, maxStackSize: 16 << 20) { Name = $"device {device}" }).ToList();
        foreach (var w in workers) w.Start();
        foreach (var w in workers) w.Join();
        error?.Throw();
        return new ScheduleOutcome(codes, onDevice);
    }
}
