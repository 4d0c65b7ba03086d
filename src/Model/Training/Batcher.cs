using MixupBert.Model.Bert;

namespace MixupBert.Model.Training;

/// <summary>
/// Tokenized examples cut into batches: shuffled per epoch (seeded by seed and epoch, so a resumed
/// run sees the same order), optionally grouped by length (HF's group_by_length: megabatches of
/// 50 batches sorted by length), each padded to its longest sequence, or to a fixed length. Token types
/// are 0, or for sentence pairs 1 from each row's second segment to its end (padding 0, as transformers pads).
/// </summary>
public sealed class Batcher(int[][] ids, int[] labels, int numLabels, int padId, int[]? secondStarts = null)
{
    public Batcher(EncodedSplit split, int[] labels, int numLabels, int padId) : this(split.Ids, labels, numLabels, padId, split.SecondStarts) { }

    public int Count => ids.Length;

    /// <summary>The longest row's length: the widest batch this batcher makes, unless padTo is longer.</summary>
    public int LongestRow { get; } = ids.Length == 0 ? 0 : ids.Max(r => r.Length);

    /// <summary>The example order of one epoch.</summary>
    public int[] Order(int seed, int epoch, bool shuffle, bool groupByLength, int batchSize)
    {
        var order = Enumerable.Range(0, ids.Length).ToArray();
        if (!shuffle) return order;
        var rng = new Random(MixSampler.StableSeed(seed, epoch, 0x5EED));
        rng.Shuffle(order);
        if (groupByLength)
        {
            int mega = batchSize * 50;
            for (int start = 0; start < order.Length; start += mega)
            {
                int len = Math.Min(mega, order.Length - start);
                Array.Sort(order, start, len, Comparer<int>.Create((a, b) => ids[b].Length.CompareTo(ids[a].Length)));
            }
        }
        return order;
    }

    /// <summary>Every example, longest first; equal lengths keep their order (a stable sort, so the
    /// order is a function of the data alone).</summary>
    public int[] OrderByLength()
    {
        var order = Enumerable.Range(0, ids.Length).ToArray();
        var lengths = order.Select(r => -ids[r].Length).ToArray();
        Array.Sort(lengths, order); // not stable by itself: ties are put back in index order below
        for (int start = 0; start < order.Length;)
        {
            int end = start + 1;
            while (end < order.Length && lengths[end] == lengths[start]) end++;
            Array.Sort(order, start, end - start);
            start = end;
        }
        return order;
    }

    public int BatchCount(int batchSize) => (ids.Length + batchSize - 1) / batchSize;

    /// <summary>The batch of rows order[start .. start+size), padded to its longest row (or to padTo).</summary>
    public Batch Make(ReadOnlySpan<int> rows, int? padTo = null)
    {
        int B = rows.Length;
        int T = 0;
        foreach (int r in rows) T = Math.Max(T, ids[r].Length);
        if (padTo is int p) T = Math.Max(T, p);
        var inputIds = new int[B * T];
        var types = new int[B * T];
        var mask = new float[B * T];
        var labelsOfBatch = new int[B];
        for (int b = 0; b < B; b++)
        {
            var row = ids[rows[b]];
            for (int t = 0; t < T; t++)
            {
                inputIds[b * T + t] = t < row.Length ? row[t] : padId;
                mask[b * T + t] = t < row.Length ? 1f : 0f;
            }
            if (secondStarts != null) types.AsSpan(b * T + secondStarts[rows[b]], row.Length - secondStarts[rows[b]]).Fill(1);
            labelsOfBatch[b] = labels[rows[b]];
        }
        return new Batch(T, numLabels, inputIds, mask, labelsOfBatch, types);
    }
}
