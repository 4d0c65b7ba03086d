namespace MixupBert.Kernels.Cuda;

/// <summary>Cpu.Embedding on the device (kernels/embedding.cuh); partner 0: no word mixing.</summary>
public static class Embedding
{
    public static void Forward(GpuContext g, nint ids, nint typeIds, nint word, nint position, nint type, nint output,
        int batch, int seqLen, int channels, nint partner = 0, nint lambda = 0)
        => g.Launch("embedding_forward", new KernelArgs().Ptr(output).Ptr(ids).Ptr(typeIds).Ptr(word).Ptr(position).Ptr(type)
            .Ptr(partner).Ptr(lambda).Int(batch).Int(seqLen).Int(channels), new Dim3((uint)(batch * seqLen)), new Dim3(GpuContext.RowThreads));

    /// <summary>
    /// Cpu.Embedding.Backward: the word and type rows from the buckets the host made of this batch
    /// (<see cref="Buckets.Build"/>), the positions column by column; each thread owning its elements, so
    /// the result is deterministic. A long bucket is summed in segments, then the segments in order.
    /// </summary>
    public static void Backward(GpuContext g, nint dOutput, Buckets buckets, nint dWord, nint dPosition, nint dType, int batch, int seqLen, int channels)
    {
        uint columnBlocks = (uint)((channels + 127) / 128);
        void Rows(nint table, BucketSet set)
        {
            if (set.Count == 0) return;
            g.Launch("embedding_backward_rows", new KernelArgs().Ptr(table).Ptr(dOutput).Ptr(set.Rows).Ptr(set.Starts).Ptr(set.Tokens)
                .Ptr(set.Weights).Int(channels), new Dim3((uint)set.Count, columnBlocks), new Dim3(128));
            if (set.LongCount == 0) return;
            nint partial = g.Partial((long)set.SegmentCount * channels);
            g.Launch("embedding_backward_segments", new KernelArgs().Ptr(partial).Ptr(dOutput).Ptr(set.SegmentStarts).Ptr(set.SegmentEnds)
                .Ptr(set.Tokens).Ptr(set.Weights).Int(channels), new Dim3((uint)set.SegmentCount, columnBlocks), new Dim3(128));
            g.Launch("embedding_add_segments", new KernelArgs().Ptr(table).Ptr(partial).Ptr(set.Rows).Ptr(set.LongBuckets)
                .Ptr(set.FirstSegments).Int(channels), new Dim3((uint)set.LongCount, columnBlocks), new Dim3(128));
        }
        Rows(dWord, buckets.Words);
        Rows(dType, buckets.Types);
        g.Launch("embedding_backward_positions", new KernelArgs().Ptr(dPosition).Ptr(dOutput).Int(batch).Int(seqLen).Int(channels),
            new Dim3((uint)seqLen, columnBlocks), new Dim3(128));
    }

    /// <summary>Entries a thread sums in one go (EMBEDDING_SEGMENT in kernels/embedding.cuh): a longer bucket
    /// is cut into segments of at most this many.</summary>
    public const int Segment = 32;

    /// <summary>One table's buckets on the device: Count rows; bucket k adds entries [Starts[k], Starts[k+1]).
    /// The LongCount buckets of more than <see cref="Segment"/> entries are LongBuckets[j], bucket j's segments
    /// are [FirstSegments[j], FirstSegments[j+1]), and segment s holds entries [SegmentStarts[s], SegmentEnds[s]).</summary>
    public readonly record struct BucketSet(int Count, nint Rows, nint Starts, nint Tokens, nint Weights,
        int LongCount, nint LongBuckets, nint FirstSegments, int SegmentCount, nint SegmentStarts, nint SegmentEnds);

    /// <summary>
    /// The batch's gradient entries sorted into one bucket per table row, on the host (as llm.c's
    /// encoder backward does), then uploaded: for every token n, its own word row with weight λ_b (1
    /// unmixed) and, when words are mixed, its partner's word row with weight 1 − λ_b; its type row
    /// with weight 1. Within a bucket the entries keep the CPU's order (n ascending, own before
    /// partner), the order of Cpu.Embedding.Backward's additions. Host and device buffers grow to the
    /// largest batch and are reused. The page-locked staging alternates between two pairs of buffers,
    /// so a Build may run while the stream has not yet copied the previous Build's buckets: the caller
    /// must have waited for the stream past the Build before that (the GPU engine's step pipeline: at
    /// most one other step in flight, and it made the previous Build).
    /// </summary>
    public sealed class Buckets(IGpu gpu) : IDisposable
    {
        private long[] keys = [];
        // uploaded without waiting; Build number k stages in pair k % 2
        private readonly (PinnedStaging Ints, PinnedStaging Weights)[] staging = [(new(gpu), new(gpu)), (new(gpu), new(gpu))];
        private long builds;
        private nint deviceInts, deviceFloats;
        private int capacity; // entries per table

        public BucketSet Words { get; private set; }
        public BucketSet Types { get; private set; }

        /// <param name="wordRows">the word table's rows; <paramref name="typeRows"/> the type table's: every id
        /// must name one (the kernel writes through them), checked as Cpu.Embedding checks them.</param>
        public void Build(ReadOnlySpan<int> ids, ReadOnlySpan<int> typeIds, int batch, int seqLen, int wordRows, int typeRows,
            ReadOnlySpan<int> partner = default, ReadOnlySpan<float> lambda = default)
        {
            int n = batch * seqLen;
            bool mixed = !partner.IsEmpty;
            if (ids.Length < n || typeIds.Length < n) throw new ArgumentException("embedding backward: fewer ids than tokens");
            if (mixed && (partner.Length < batch || lambda.Length < batch || partner[..batch].ContainsAnyExceptInRange(0, batch - 1)))
                throw new ArgumentException($"embedding: partner and λ need one entry per example, each partner inside the batch of {batch}");
            if (ids[..n].ContainsAnyExceptInRange(0, wordRows - 1))
                throw new ArgumentException($"embedding: a token id is outside the word table's {wordRows} rows");
            if (typeIds[..n].ContainsAnyExceptInRange(0, typeRows - 1))
                throw new ArgumentException($"embedding: a token type id is outside the type table's {typeRows} rows");
            int entries = mixed ? 2 * n : n;
            Grow(entries);
            int setInts = SetInts;
            // words: key = row << 32 | (2n + 0 own, 2n + 1 partner), so a sort orders by row, then CPU order
            for (int t = 0; t < n; t++)
            {
                int b = t / seqLen;
                keys[mixed ? 2 * t : t] = ((long)ids[t] << 32) | (uint)(mixed ? 2 * t : t);
                if (mixed) keys[2 * t + 1] = ((long)ids[partner[b] * seqLen + t % seqLen] << 32) | (uint)(2 * t + 1);
            }
            var (hostInts, hostWeights) = staging[builds++ % 2];
            var allInts = hostInts.Get<int>(2 * setInts);
            var weights = hostWeights.Get<float>(2 * capacity);
            var wordInts = allInts[..setInts];
            var (words, wordLongs, wordSegments) = Bucketize(keys.AsSpan(0, entries), wordInts);
            var wordTokens = wordInts.Slice(2 * capacity + 1, entries);
            for (int i = 0; i < entries; i++)
            {
                int e = wordTokens[i], token = mixed ? e >> 1 : e;
                wordTokens[i] = token;
                weights[i] = !mixed ? 1f : (e & 1) == 0 ? lambda[token / seqLen] : 1f - lambda[token / seqLen];
            }
            for (int t = 0; t < n; t++) keys[t] = ((long)typeIds[t] << 32) | (uint)t;
            var (types, typeLongs, typeSegments) = Bucketize(keys.AsSpan(0, n), allInts.Slice(setInts, setInts));
            weights.Slice(capacity, n).Fill(1f);
            hostInts.Upload<int>(deviceInts, 2 * setInts);
            hostWeights.Upload<float>(deviceFloats, 2 * capacity);
            Words = Set(words, wordLongs, wordSegments, deviceInts, GpuContext.At(deviceFloats, 0));
            Types = Set(types, typeLongs, typeSegments, GpuContext.At(deviceInts, setInts), GpuContext.At(deviceFloats, capacity));
        }

        // A set's ints: rows [capacity] | starts [capacity + 1] | tokens [capacity] | long buckets [longs] |
        // first segments [longs + 1] | segment starts [segments] | segment ends [segments]. A long bucket has
        // more than Segment entries, so there are fewer than capacity / Segment of them, and they hold at
        // most capacity / Segment + longs segments.
        private int Longs => capacity / Segment + 1;
        private int Segments => 2 * Longs;
        private int SetInts => 3 * capacity + 1 + 2 * Longs + 1 + 2 * Segments;
        private int LongsAt => 3 * capacity + 1;
        private int FirstSegmentsAt => LongsAt + Longs;
        private int SegmentStartsAt => FirstSegmentsAt + Longs + 1;
        private int SegmentEndsAt => SegmentStartsAt + Segments;

        /// <summary>Sorts the keys (row, entry) and writes the set's rows, starts and, per sorted entry, the
        /// entry's number (the caller turns it into a token and a weight), then cuts the buckets of more than
        /// <see cref="Segment"/> entries into segments; returns the counts of buckets, long buckets and segments.</summary>
        private (int Count, int Longs, int Segments) Bucketize(Span<long> sorted, Span<int> ints)
        {
            sorted.Sort();
            var rows = ints[..capacity]; var starts = ints.Slice(capacity, capacity + 1); var entries = ints.Slice(2 * capacity + 1, capacity);
            int count = 0;
            for (int i = 0; i < sorted.Length; i++)
            {
                int row = (int)(sorted[i] >> 32);
                if (count == 0 || rows[count - 1] != row) { rows[count] = row; starts[count] = i; count++; }
                entries[i] = (int)(uint)sorted[i];
            }
            starts[count] = sorted.Length;
            var longs = ints.Slice(LongsAt, Longs); var firstSegments = ints.Slice(FirstSegmentsAt, Longs + 1);
            var segmentStarts = ints.Slice(SegmentStartsAt, Segments); var segmentEnds = ints.Slice(SegmentEndsAt, Segments);
            int longCount = 0, segmentCount = 0;
            for (int k = 0; k < count; k++)
            {
                if (starts[k + 1] - starts[k] <= Segment) continue;
                longs[longCount] = k;
                firstSegments[longCount++] = segmentCount;
                for (int e = starts[k]; e < starts[k + 1]; e += Segment)
                {
                    segmentStarts[segmentCount] = e;
                    segmentEnds[segmentCount++] = Math.Min(e + Segment, starts[k + 1]);
                }
            }
            firstSegments[longCount] = segmentCount;
            return (count, longCount, segmentCount);
        }

        private BucketSet Set(int count, int longs, int segments, nint ints, nint weights) =>
            new(count, ints, GpuContext.At(ints, capacity), GpuContext.At(ints, 2 * capacity + 1), weights,
                longs, GpuContext.At(ints, LongsAt), GpuContext.At(ints, FirstSegmentsAt),
                segments, GpuContext.At(ints, SegmentStartsAt), GpuContext.At(ints, SegmentEndsAt));

        private void Grow(int entries)
        {
            if (entries <= capacity) return;
            Dispose();
            capacity = entries;
            keys = new long[capacity];
            try
            {
                deviceInts = gpu.Alloc(2L * SetInts * 4);
                deviceFloats = gpu.Alloc(2L * capacity * 4);
            }
            catch // out of memory: no capacity claimed, so the next Build grows again instead of uploading to address 0
            {
                Dispose();
                capacity = 0;
                throw;
            }
        }

        public void Dispose()
        {
            if (deviceInts != 0) gpu.Free(deviceInts);
            if (deviceFloats != 0) gpu.Free(deviceFloats);
            deviceInts = deviceFloats = 0;
            foreach (var (ints, weights) in staging) { ints.Dispose(); weights.Dispose(); }
        }
    }
}
