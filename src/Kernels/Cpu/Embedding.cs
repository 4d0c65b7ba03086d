namespace MixupBert.Kernels.Cpu;

/// <summary>
/// The sum of three embedding lookups per token: word[id] + position[t] + type[typeId]. The mixup
/// form interpolates the word part with a second id stream, λ·word[id] + (1−λ)·word[partnerId],
/// before the other two are added once. Ids are checked against the tables before any pointer is formed.
/// </summary>
public static unsafe class Embedding
{
    private struct ForwardBody : ParallelFor.IRangeBody
    {
        public float* Out, Word, Pos, Type, Lambda;
        public int* Ids, PartnerIds, TypeIds;
        public int T, C;
        public void Run(int begin, int end)
        {
            for (int n = begin; n < end; n++)
            {
                int t = n % T;
                var o = new Span<float>(Out + (long)n * C, C);
                var w = new ReadOnlySpan<float>(Word + (long)Ids[n] * C, C);
                var p = new ReadOnlySpan<float>(Pos + (long)t * C, C);
                var y = new ReadOnlySpan<float>(Type + (long)TypeIds[n] * C, C);
                if (PartnerIds == null)
                {
                    System.Numerics.Tensors.TensorPrimitives.Add(w, p, o);
                }
                else
                {
                    float l = Lambda[n / T];
                    var w2 = new ReadOnlySpan<float>(Word + (long)PartnerIds[n] * C, C);
                    for (int c = 0; c < C; c++) o[c] = l * w[c] + (1f - l) * w2[c] + p[c];
                }
                System.Numerics.Tensors.TensorPrimitives.Add(o, y, o);
            }
        }
    }

    /// <param name="partnerIds">null for plain embeddings; else the partner's ids, same shape as ids.</param>
    /// <param name="lambda">per example (length B): the weight of the example's own words.</param>
    public static void Forward(Span<float> output, ReadOnlySpan<float> word, ReadOnlySpan<float> position, ReadOnlySpan<float> type,
        ReadOnlySpan<int> ids, ReadOnlySpan<int> typeIds, int batch, int seqLen, int channels,
        ReadOnlySpan<int> partnerIds = default, ReadOnlySpan<float> lambda = default)
    {
        int n = batch * seqLen;
        if (output.Length < (long)n * channels || ids.Length < n || typeIds.Length < n || position.Length < (long)seqLen * channels)
            throw new ArgumentException("embedding: buffers too small");
        bool mixed = !partnerIds.IsEmpty;
        if (mixed && (partnerIds.Length < n || lambda.Length < batch)) throw new ArgumentException("embedding: partner ids or λ too short");
        CheckRows(ids, typeIds, partnerIds, n, word.Length, type.Length, channels);
        fixed (float* po = output, pw = word, pp = position, pt = type, pl = lambda)
        fixed (int* pi = ids, pj = partnerIds, pti = typeIds)
            ParallelFor.Run(n, new ForwardBody
            {
                Out = po, Word = pw, Pos = pp, Type = pt, Lambda = pl, Ids = pi, PartnerIds = mixed ? pj : null, TypeIds = pti,
                T = seqLen, C = channels,
            }, channels * 3L);
    }

    private struct BackwardBody : ParallelFor.IRangeBody
    {
        public float* DOut, DWord, DPos, DType, Lambda;
        public int* Ids, PartnerIds, TypeIds;
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
                if (PartnerIds == null)
                {
                    for (int c = c0; c < c1; c++) w[c] += g[c];
                }
                else
                {
                    float l = Lambda[n / T];
                    float* w2 = DWord + (long)PartnerIds[n] * C;
                    for (int c = c0; c < c1; c++) w[c] += l * g[c];
                    for (int c = c0; c < c1; c++) w2[c] += (1f - l) * g[c];
                }
                for (int c = c0; c < c1; c++) p[c] += g[c];
                for (int c = c0; c < c1; c++) y[c] += g[c];
            }
        }
    }

    /// <summary>Scatter-adds dOut into the three tables' gradients (and the partner's word rows).</summary>
    public static void Backward(ReadOnlySpan<float> dOutput, Span<float> dWord, Span<float> dPosition, Span<float> dType,
        ReadOnlySpan<int> ids, ReadOnlySpan<int> typeIds, int batch, int seqLen, int channels,
        ReadOnlySpan<int> partnerIds = default, ReadOnlySpan<float> lambda = default)
    {
        int n = batch * seqLen;
        if (dOutput.Length < (long)n * channels || ids.Length < n || typeIds.Length < n || dPosition.Length < (long)seqLen * channels)
            throw new ArgumentException("embedding backward: buffers too small");
        bool mixed = !partnerIds.IsEmpty;
        if (mixed && (partnerIds.Length < n || lambda.Length < batch)) throw new ArgumentException("embedding backward: partner ids or λ too short");
        CheckRows(ids, typeIds, partnerIds, n, dWord.Length, dType.Length, channels);
        fixed (float* pd = dOutput, pw = dWord, pp = dPosition, pt = dType, pl = lambda)
        fixed (int* pi = ids, pj = partnerIds, pti = typeIds)
            ParallelFor.Run(channels, new BackwardBody
            {
                DOut = pd, DWord = pw, DPos = pp, DType = pt, Lambda = pl, Ids = pi, PartnerIds = mixed ? pj : null, TypeIds = pti,
                N = n, T = seqLen, C = channels,
            }, n * 4L, 16);
    }

    /// <summary>Every id must name a row of its table: the kernels index the tables with raw pointers.</summary>
    private static void CheckRows(ReadOnlySpan<int> ids, ReadOnlySpan<int> typeIds, ReadOnlySpan<int> partnerIds, int n,
        int wordLength, int typeLength, int channels)
    {
        int words = wordLength / channels, types = typeLength / channels;
        if (words == 0 || ids[..n].ContainsAnyExceptInRange(0, words - 1) || (!partnerIds.IsEmpty && partnerIds[..n].ContainsAnyExceptInRange(0, words - 1)))
            throw new ArgumentException($"embedding: a token id is outside the word table's {words} rows");
        if (types == 0 || typeIds[..n].ContainsAnyExceptInRange(0, types - 1))
            throw new ArgumentException($"embedding: a token type id is outside the type table's {types} rows");
    }
}
