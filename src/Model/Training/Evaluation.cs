using MixupBert.Model.Bert;

namespace MixupBert.Model.Training;

/// <summary>Evaluation of any engine on any tokenized split: probabilities in, metrics out.</summary>
public static class Evaluation
{
    public static ClassificationMetrics Run(IBertEngine engine, Batcher batcher, int[] labels, int batchSize, int? padTo = null)
        => Run(engine, batcher, labels, batchSize, padTo, out _);

    /// <summary>
    /// Batches are cut from the examples sorted by length (longest first), so each is padded to
    /// about its own rows' length and not to the longest of a random neighbourhood: a plain forward
    /// has no order to keep, and each example's probabilities go back to its own place.
    /// </summary>
    public static ClassificationMetrics Run(IBertEngine engine, Batcher batcher, int[] labels, int batchSize, int? padTo, out float[] probabilities)
    {
        int L = engine.Config.NumLabels;
        probabilities = new float[labels.Length * L];
        var order = batcher.OrderByLength();
        if (order.Length > 0) engine.Reserve(Math.Min(batchSize, order.Length), Math.Max(batcher.LongestRow, padTo ?? 0));
        var batchProbabilities = new float[Math.Min(batchSize, order.Length) * L];
        double lossSum = 0;
        for (int start = 0; start < order.Length; start += batchSize)
        {
            var rows = order.AsSpan(start, Math.Min(batchSize, order.Length - start));
            var batch = batcher.Make(rows, padTo);
            lossSum += engine.Evaluate(batch, batchProbabilities.AsSpan(0, batch.BatchSize * L)) * batch.BatchSize;
            for (int b = 0; b < rows.Length; b++)
                batchProbabilities.AsSpan(b * L, L).CopyTo(probabilities.AsSpan(rows[b] * L, L));
        }
        return ClassificationMetrics.Compute(labels, probabilities, L, lossSum / labels.Length);
    }
}
