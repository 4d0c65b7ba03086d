using System.Globalization;
using ScottPlot;

namespace MixupBert.Model.Experiments;

/// <summary>
/// The report's PNG figures: training loss against step and validation loss and accuracy against
/// epoch (mean over seeds with a ±1 sd band), test accuracy against train size, and a reliability
/// diagram per cell. Text is drawn with the embedded DejaVu Sans font, so the figures read the same on
/// a machine without fonts.
/// </summary>
public static class ReportFigures
{
    private const string FontName = "DejaVu Sans";
    private static bool fontReady;


    private static Plot NewPlot(string title, string x, string y)
    {
        EnsureFont();
        var plot = new Plot();
        plot.Font.Set(FontName);
        plot.Title(title);
        plot.XLabel(x);
        plot.YLabel(y);
        return plot;
    }

    /// <summary>The embedded DejaVu Sans, registered with ScottPlot once per process.</summary>
    private static void EnsureFont()
    {
        if (fontReady) return;
        string path = Path.Combine(Path.GetTempPath(), "mixup-bert-DejaVuSans.ttf");
        if (!File.Exists(path))
        {
            using var s = typeof(ReportFigures).Assembly.GetManifestResourceStream("DejaVuSans.ttf") ?? throw new InvalidOperationException("the embedded font is missing");
            using var f = File.Create(path + ".tmp");
            s.CopyTo(f);
            f.Close();
            File.Move(path + ".tmp", path, overwrite: true);
        }
        Fonts.AddFontFile(FontName, path);
        Fonts.Default = FontName;
        fontReady = true;
    }

    /// <summary>Mean over seeds at each x, with a ±1 sd band, one line per cell (its runs at its chosen lr).</summary>
    public static bool CurvePlot(IReadOnlyList<CellResult> cells, Func<RunResult, List<(double X, double Y)>> series, string x, string y, string title, string path,
        bool fraction = false)
    {
        var plot = Curve(cells, series, x, y, title, fraction);
        if (plot == null) return false;
        plot.SavePng(path, 800, 500);
        return true;
    }

    /// <summary>The figure of <see cref="CurvePlot"/>, not saved; null where no run has the series. x is a step or an
    /// epoch, so its ticks are whole numbers; a <paramref name="fraction"/> (an accuracy) has its y axis within [0, 1].</summary>
    public static Plot? Curve(IReadOnlyList<CellResult> cells, Func<RunResult, List<(double X, double Y)>> series, string x, string y, string title, bool fraction)
    {
        if (!cells.SelectMany(c => c.Runs).Any(r => series(r).Count > 0)) return null;
        var plot = NewPlot(title, x, y);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        foreach (var (cell, color) in cells.Zip(Palette()))
        {
            var points = cell.Runs.SelectMany(series).GroupBy(p => p.X).OrderBy(g => g.Key)
                .Select(g => (X: g.Key, S: Statistics.Describe(g.Select(p => p.Y).ToList()))).ToList();
            if (points.Count == 0) continue;
            double[] xs = points.Select(p => p.X).ToArray(), mean = points.Select(p => p.S.Mean).ToArray();
            if (points.All(p => p.S.N > 1))
            {
                var band = plot.Add.FillY(xs, mean.Zip(points, (m, p) => m - p.S.Sd).ToArray(), mean.Zip(points, (m, p) => m + p.S.Sd).ToArray());
                band.FillColor = color.WithAlpha(0.2);
                band.LineWidth = 0;
            }
            var line = plot.Add.ScatterLine(xs, mean);
            line.Color = color;
            line.LineWidth = 2;
            line.LegendText = cell.Label;
        }
        plot.ShowLegend();
        if (fraction)
        {
            // the ±1 sd band of accuracies near 1 would stretch the axis past what an accuracy can be
            plot.Axes.AutoScale();
            var limits = plot.Axes.GetLimits();
            plot.Axes.SetLimitsY(Math.Max(limits.Bottom, 0), Math.Min(limits.Top, 1));
        }
        return plot;
    }

    public static bool ReliabilityPlot(List<RunResult> runs, string title, string path)
    {
        var withBins = runs.Where(r => r.Reliability != null).ToList();
        if (withBins.Count == 0) return false;
        int bins = withBins[0].Reliability!.Count.Length;
        var count = new double[bins]; var hits = new double[bins]; var conf = new double[bins];
        foreach (var r in withBins)
        {
            var (c, a, f) = r.Reliability!;
            for (int b = 0; b < bins; b++) { count[b] += c[b]; hits[b] += a[b] * c[b]; conf[b] += f[b] * c[b]; }
        }
        var plot = NewPlot(title, "confidence", "accuracy");
        var bars = new List<Bar>();
        for (int b = 0; b < bins; b++)
            if (count[b] > 0)
                bars.Add(new Bar { Position = (b + 0.5) / bins, Value = hits[b] / count[b], Size = 0.9 / bins, FillColor = Colors.SteelBlue });
        plot.Add.Bars(bars);
        var diagonal = plot.Add.Line(0, 0, 1, 1);
        diagonal.Color = Colors.Gray;
        diagonal.LinePattern = LinePattern.Dashed;
        plot.Axes.SetLimits(0, 1, 0, 1);
        plot.SavePng(path, 600, 600);
        return true;
    }

    /// <summary>Test accuracy against train size, one line per mode and α (each size at its chosen lr).</summary>
    public static void FewShotPlot(Analysis analysis, string path)
    {
        var plot = NewPlot("Test accuracy against train size", "train examples", "test accuracy");
        var all = analysis.Cells.Values.SelectMany(l => l).ToList();
        var labels = all.Select(c => c.Label).Distinct().ToList(); // cells come in mode, α order within each size
        foreach (var (label, color) in labels.Zip(Palette()))
        {
            var points = all.Where(c => c.Label == label).SelectMany(c => c.Runs).GroupBy(r => r.TrainExamples).OrderBy(g => g.Key)
                .Select(g => (X: (double)g.Key, S: Statistics.Describe(g.Select(r => r.TestMetric(m => m.Accuracy)).ToList()))).ToList();
            var xs = points.Select(p => Math.Log10(p.X)).ToArray();
            var line = plot.Add.ScatterLine(xs, points.Select(p => p.S.Mean).ToArray());
            line.Color = color; line.LineWidth = 2; line.LegendText = label; line.MarkerSize = 8;
            if (points.All(p => p.S.N > 1))
            {
                var err = plot.Add.ErrorBar(xs, points.Select(p => p.S.Mean).ToArray(), points.Select(p => p.S.Sd).ToArray());
                err.Color = color;
            }
        }
        var ticks = all.SelectMany(c => c.Runs).Select(r => r.TrainExamples).Distinct().Order().Select(n => new Tick(Math.Log10(n), n.ToString(CultureInfo.InvariantCulture))).ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks);
        plot.XLabel("train examples (log scale)");
        plot.ShowLegend();
        plot.SavePng(path, 800, 500);
    }

    private static IEnumerable<Color> Palette()
    {
        // twelve distinct colours: a full grid has eleven cells per train size (baseline, mixup, tmix and
        // senmix at three α, ssmix), and six made baseline and ssmix both black
        Color[] c = { Colors.Black, Colors.OrangeRed, Colors.SteelBlue, Colors.ForestGreen, Colors.Purple, Colors.Brown,
                      Colors.GoldenRod, Colors.DeepPink, Colors.Teal, Colors.Gray, Colors.Navy, Colors.Olive };
        for (int i = 0; ; i++) yield return c[i % c.Length];
    }
}
