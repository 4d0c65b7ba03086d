namespace MixupBert.Kernels.Cpu;

/// <summary>
/// The sum of three embedding lookups per token: word[id] + position[t] + type[typeId]. The mixup
/// form (mixup's word-embedding site, the other sites are in <see cref="Mixup"/>) interpolates the
/// word part of example b with that of its partner p_b at the same position,
/// λ_b·word[id[b, t]] + (1−λ_b)·word[id[p_b, t]], before the other two are added once. Ids are checked
/// against the tables before any pointer is formed. CUDA: kernels/embedding.cuh.
/// </summary>
public static unsafe class Embedding
{
    private struct ForwardBody : ParallelFor.IRangeBody
    {
        public float* Out, Word, Pos, Type, Lambda;
        public int* Ids, Partner, TypeIds;
        public int T, C;
        public void Run(int begin, int end)
        {
            for (int n = begin; n < end; n++)
            {
                int b = n / T, t = n % T;
                var o = new Span<float>(Out + (long)n * C, C);
                var w = new ReadOnlySpan<float>(Word + (long)Ids[n] * C, C);
                var p = new ReadOnlySpan<float>(Pos + (long)t * C, C);
                var y = new ReadOnlySpan<float>(Type + (long)TypeIds[n] * C, C);
                if (Partner == null)
                {
                    System.Numerics.Tensors.TensorPrimitives.Add(w, p, o);
                }
                else
                {
                    float l = Lambda[b];
                    var w2 = new ReadOnlySpan<float>(Word + (long)Ids[Partner[b] * T + t] * C, C);
                    for (int c = 0; c < C; c++) o[c] = l * w[c] + (1f - l) * w2[c] + p[c];
                }
                System.Numerics.Tensors.TensorPrimitives.Add(o, y, o);
            }
        }
    }

    /// <param name="partner">empty for plain embeddings; else each example's partner (length B).</param>
    /// <param name="lambda">per example (length B): the weight of the example's own words.</param>
    public static void Forward(ReadOnlySpan<int> ids, ReadOnlySpan<int> typeIds, ReadOnlySpan<float> word, ReadOnlySpan<float> position,
        ReadOnlySpan<float> type, Span<float> output, int batch, int seqLen, int channels,
        ReadOnlySpan<int> partner = default, ReadOnlySpan<float> lambda = default)
    {
        int n = batch * seqLen;
        if (output.Length < (long)n * channels || ids.Length < n || typeIds.Length < n || position.Length < (long)seqLen * channels)
            throw new ArgumentException("embedding: buffers too small");
        bool mixed = !partner.IsEmpty;
        CheckRows(ids, typeIds, partner, lambda, batch, n, word.Length, type.Length, channels);
        fixed (float* po = output, pw = word, pp = position, pt = type, pl = lambda)
        fixed (int* pi = ids, pj = partner, pti = typeIds)
            ParallelFor.Run(n, new ForwardBody
            {
                Out = po, Word = pw, Pos = pp, Type = pt, Lambda = pl, Ids = pi, Partner = mixed ? pj : null, TypeIds = pti,
                T = seqLen, C = channels,
            }, channels * 3L);
    }

    private struct BackwardBody : ParallelFor.IRangeBody
    {
        public float* DOut, DWord, DPos, DType, Lambda;
        public int* Ids, Partner, TypeIds;
        public int N, T, C;
        // Each worker owns a range of channels and walks every token in order: no races, and the
        // scatter-add order is fixed, so the result is deterministic.
        public void Run(int c0, int c1)
        {
            for (int n = 0; n < N; n++)
            {
                float* g = DOut + (long)n * C;
                float* w = DWord + (long)Ids[n] * C;
                float* p = DPos + (long)(n % T) * C;
                float* y = DType + (long)TypeIds[n] * C;
                if (Partner == null)
                {
                    for (int c = c0; c < c1; c++) w[c] += g[c];
                }
                else
                {
                    int b = n / T;
                    float l = Lambda[b];
                    float* w2 = DWord + (long)Ids[Partner[b] * T + n % T] * C;
                    for (int c = c0; c < c1; c++) w[c] += l * g[c];
                    for (int c = c0; c < c1; c++) w2[c] += (1f - l) * g[c];
                }
                for (int c = c0; c < c1; c++) p[c] += g[c];
                for (int c = c0; c < c1; c++) y[c] += g[c];
            }
        }
    }

    /// <summary>Scatter-adds dOutput into the three tables' gradients (and the partner's word rows).</summary>
    public static void Backward(ReadOnlySpan<float> dOutput, ReadOnlySpan<int> ids, ReadOnlySpan<int> typeIds,
        Span<float> dWord, Span<float> dPosition, Span<float> dType, int batch, int seqLen, int channels,
        ReadOnlySpan<int> partner = default, ReadOnlySpan<float> lambda = default)
    {
        int n = batch * seqLen;
        if (dOutput.Length < (long)n * channels || ids.Length < n || typeIds.Length < n || dPosition.Length < (long)seqLen * channels)
            throw new ArgumentException("embedding backward: buffers too small");
        bool mixed = !partner.IsEmpty;
        CheckRows(ids, typeIds, partner, lambda, batch, n, dWord.Length, dType.Length, channels);
        fixed (float* pd = dOutput, pw = dWord, pp = dPosition, pt = dType, pl = lambda)
        fixed (int* pi = ids, pj = partner, pti = typeIds)
            ParallelFor.Run(channels, new BackwardBody
            {
                DOut = pd, DWord = pw, DPos = pp, DType = pt, Lambda = pl, Ids = pi, Partner = mixed ? pj : null, TypeIds = pti,
                N = n, T = seqLen, C = channels,
            }, n * 4L, 16);
    }

    /// <summary>Every id must name a row of its table: the kernels index the tables with raw pointers.</summary>
    private static void CheckRows(ReadOnlySpan<int> ids, ReadOnlySpan<int> typeIds, ReadOnlySpan<int> partner, ReadOnlySpan<float> lambda,
        int batch, int n, int wordLength, int typeLength, int channels)
    {
        int words = wordLength / channels, types = typeLength / channels;
        if (!partner.IsEmpty && (partner.Length < batch || lambda.Length < batch || partner[..batch].ContainsAnyExceptInRange(0, batch - 1)))
            throw new ArgumentException($"embedding: partner and λ need one entry per example, each partner inside the batch of {batch}");
        if (words == 0 || ids[..n].ContainsAnyExceptInRange(0, words - 1))
            throw new ArgumentException($"embedding: a token id is outside the word table's {words} rows");
        if (types == 0 || typeIds[..n].ContainsAnyExceptInRange(0, types - 1))
            throw new ArgumentException($"embedding: a token type id is outside the type table's {types} rows");
    }
}
