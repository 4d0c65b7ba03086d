using MixupBert.Model.Bert;

namespace MixupBert.Model.Training;

/// <summary>Evaluation of any engine on any tokenized split: probabilities in, metrics out.</summary>
public static class Evaluation
{
    public static ClassificationMetrics Run(IBertEngine engine, Batcher batcher, int[] labels, int batchSize, int? padTo = null)
        => Run(engine, batcher, labels, batchSize, padTo, out _);

    public static ClassificationMetrics Run(IBertEngine engine, Batcher batcher, int[] labels, int batchSize, int? padTo, out float[] probabilities)
    {
        int L = engine.Config.NumLabels;
        probabilities = new float[labels.Length * L];
        var order = batcher.Order(0, 0, shuffle: false, groupByLength: false, batchSize);
        double lossSum = 0;
        for (int start = 0; start < order.Length; start += batchSize)
        {
            var batch = batcher.Make(order.AsSpan(start, Math.Min(batchSize, order.Length - start)), padTo);
            lossSum += engine.Evaluate(batch, probabilities.AsSpan(start * L, batch.BatchSize * L)) * batch.BatchSize;
        }
        return ClassificationMetrics.Compute(labels, probabilities, L, lossSum / labels.Length);
    }
}
