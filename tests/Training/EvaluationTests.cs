using MixupBert.Model.Bert;
using MixupBert.Model.Training;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Training;

/// <summary>
/// Evaluation batches examples by length and reserves the activations once; neither may change what
/// an example is given: its probabilities are those of a forward of it alone.
/// </summary>
public class EvaluationTests
{
    private static (int[][] Ids, int[] Labels) Examples(int count, int maxLength, int vocab, int labels, int seed)
    {
        var rng = new Random(seed);
        var ids = new int[count][];
        for (int i = 0; i < count; i++)
        {
            ids[i] = new int[2 + rng.Next(maxLength - 1)]; // lengths 2..maxLength, in no order
            for (int t = 0; t < ids[i].Length; t++) ids[i][t] = 1 + rng.Next(vocab - 1);
        }
        return (ids, Enumerable.Range(0, count).Select(_ => rng.Next(labels)).ToArray());
    }

    [Fact]
    public void APairsRowsHaveTokenTypeOneFromItsSecondSegmentAndPaddingHasZero()
    {
        // [CLS] a [SEP] b b [SEP] and [CLS] a a [SEP] b [SEP] [PAD]: types as transformers makes them
        var split = new EncodedSplit([[101, 7, 102, 8, 8, 102], [101, 7, 7, 102, 8, 102], [101, 9, 102]], [3, 4, 3]);
        var batch = new Batcher(split, [0, 1, 0], 2, 0).Make([1, 0, 2]);
        Assert.Equal(6, batch.SeqLen);
        Assert.Equal([0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0], batch.TokenTypeIds.ToArray());
        Assert.Equal([101, 7, 7, 102, 8, 102, 101, 7, 102, 8, 8, 102, 101, 9, 102, 0, 0, 0], batch.InputIds.ToArray());
        // single texts: all zero
        Assert.All(new Batcher(split.Ids, [0, 1, 0], 2, 0).Make([0, 1, 2]).TokenTypeIds.ToArray(), t => Assert.Equal(0, t));
    }

    [Fact]
    public void EachExampleGetsTheProbabilitiesOfAForwardOfItAlone()
    {
        var config = TinyConfig(labels: 3);
        var engine = new CpuBertEngine(config, BertCheckpoint.RandomInit(config, 7));
        var (ids, labels) = Examples(23, config.MaxPositionEmbeddings, config.VocabSize, 3, seed: 5);
        var batcher = new Batcher(ids, labels, 3, config.PadTokenId);

        var metrics = Evaluation.Run(engine, batcher, labels, batchSize: 5, padTo: null, out var probabilities);

        double lossSum = 0;
        var alone = new float[3];
        for (int i = 0; i < ids.Length; i++)
        {
            lossSum += engine.Evaluate(batcher.Make(new[] { i }), alone);
            for (int k = 0; k < 3; k++)
                Assert.True(Math.Abs(alone[k] - probabilities[i * 3 + k]) < 1e-5f,
                    $"example {i} (length {ids[i].Length}), class {k}: {probabilities[i * 3 + k]} in a batch, {alone[k]} alone");
        }
        Assert.Equal(lossSum / ids.Length, metrics.Loss, 5);
        Assert.Equal(23, metrics.Count);
    }

    [Fact]
    public void OrderByLengthIsLongestFirstAndKeepsTheDataOrderOnTies()
    {
        int[][] ids = { new int[3], new int[5], new int[3], new int[1], new int[5], new int[3] };
        var batcher = new Batcher(ids, new int[6], 2, 0);
        Assert.Equal(new[] { 1, 4, 0, 2, 5, 3 }, batcher.OrderByLength());
        Assert.Equal(5, batcher.LongestRow);
        Assert.Empty(new Batcher(Array.Empty<int[]>(), Array.Empty<int>(), 2, 0).OrderByLength());
    }

    [Fact]
    public void ReservedActivationsAreNotReallocatedAsBatchesGrowLonger()
    {
        var config = TinyConfig(labels: 2);
        var engine = new CpuBertEngine(config, BertCheckpoint.RandomInit(config, 3));
        var probabilities = new float[8 * 2];
        var batches = Enumerable.Range(5, 12).Select(T => RandomBatch(config, 8, T, T)).ToArray(); // lengths 5..16
        engine.Reserve(8, 16);
        engine.Evaluate(RandomBatch(config, 8, 4, 1), probabilities); // warm-up: JIT, thread-static scratch
        long before = GC.GetAllocatedBytesForCurrentThread();
        foreach (var batch in batches) engine.Evaluate(batch, probabilities);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        // Without the reservation each longer batch allocates a new activation inventory: measured
        // 197 KB at 8 × 5 tokens rising to 650 KB at 8 × 16, 5.3 MB over the 12 batches. With it,
        // what remains is per-thread row scratch that grows with the length (1.6 to 3.2 KB a batch,
        // 28 KB in all, none once every length has been seen).
        Assert.True(allocated < 64 * 1024, $"{allocated} bytes allocated by 12 batches of growing length after Reserve(8, 16)");
    }
}
