using System.Diagnostics;
using System.Globalization;
using MixupBert.Model.Hub;
using MixupBert.Model.Training;
using Spectre.Console;

namespace MixupBert.Tool;

/// <summary>
/// Shows a run's progress: a live bar (step, loss, lr, samples/s, ETA) on a terminal, plain
/// periodic log lines when output is redirected. Every line also goes to the run's log file.
/// </summary>
public sealed class ConsoleObserver : ITrainingObserver, IDisposable
{
    private readonly StreamWriter? log;
    private readonly bool live;
    private readonly string prefix;
    private readonly Stopwatch sinceLine = Stopwatch.StartNew();
    private readonly Stopwatch total = Stopwatch.StartNew();
    private ProgressTask? task;

    /// <param name="consolePrefix">Set where several runs share the console (compare --devices): their lines
    /// on the console start with it, and none shows a live bar.</param>
    public ConsoleObserver(string? logFile, string? consolePrefix = null)
    {
        prefix = consolePrefix ?? "";
        live = consolePrefix == null && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
        if (logFile != null)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(logFile)!);
            log = new StreamWriter(logFile, append: true) { AutoFlush = true };
        }
    }

    public void Line(string text)
    {
        log?.WriteLine($"{DateTime.Now:yyyy-MM-dd HH:mm:ss} {text}");
        if (live) AnsiConsole.MarkupLine(Markup.Escape(text));
        else Console.WriteLine(prefix + text);
    }

    public void Error(string text)
    {
        log?.WriteLine($"{DateTime.Now:yyyy-MM-dd HH:mm:ss} error: {text}");
        Console.Error.WriteLine($"{prefix}error: {text}");
    }

    public void Message(string text) => Line(text);

    /// <summary>Runs <paramref name="work"/> under a live progress bar when on a terminal.</summary>
    public T WithProgress<T>(long totalSteps, Func<T> work)
    {
        if (!live) return work();
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                task = ctx.AddTask("training", maxValue: totalSteps);
                result = work();
            });
        task = null;
        return result;
    }

    public void Step(int epoch, long step, long totalSteps, double loss, float learningRate, double samplesPerSecond)
    {
        if (task != null)
        {
            task.Value = step;
            // short enough that bar, percentage and times still fit an 80-column terminal
            task.Description = Markup.Escape($"ep {epoch + 1} {step}/{totalSteps} loss {loss:F3} lr {learningRate:0.0e0} {samplesPerSecond:F0}/s");
            return;
        }
        if (sinceLine.Elapsed.TotalSeconds < 10 && step != totalSteps) return;
        sinceLine.Restart();
        double eta = step > 0 ? total.Elapsed.TotalSeconds / step * (totalSteps - step) : 0;
        Line($"epoch {epoch + 1} step {step}/{totalSteps} loss {loss:F4} lr {LearningRate(learningRate)} {samplesPerSecond:F1} samples/s eta {TimeSpan.FromSeconds(eta):hh\\:mm\\:ss}");
    }

    /// <summary>A learning rate as the report and the run folders' names write it (2.5e-05, 0.0001), to three
    /// significant digits: a scheduled lr is rarely a round number.</summary>
    public static string LearningRate(float lr) => lr.ToString("G3", CultureInfo.InvariantCulture).ToLowerInvariant();

    public void Evaluated(string split, int epoch, ClassificationMetrics m, bool best) =>
        Line($"{split} after epoch {epoch}: loss {m.Loss:F4} accuracy {m.Accuracy:F4} f1 {m.F1:F4} precision {m.Precision:F4} recall {m.Recall:F4} ece {m.Ece:F4}{(best ? "  (best so far)" : "")}");

    /// <summary>Download progress with bytes/s, at most one line every few seconds when redirected.</summary>
    public void Download(DownloadProgress p)
    {
        if (!p.Done && !live && sinceLine.Elapsed.TotalSeconds < 5) return;
        sinceLine.Restart();
        string text = $"download {p.File}: {p.Sizes()} at {DownloadProgress.Size(p.BytesPerSecond)}/s{(p.Done ? " done" : "")}";
        if (live && !p.Done) { Console.Write("\r" + text.PadRight(78)); return; }
        if (live) Console.Write("\r" + new string(' ', 80) + "\r");
        Line(text);
    }

    public void Dispose() => log?.Dispose();
}
