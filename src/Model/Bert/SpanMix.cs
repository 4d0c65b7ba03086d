namespace MixupBert.Model.Bert;

/// <summary>
/// SSMix (Yoon, Kim and Park, 2021, "SSMix: Saliency-Based Span Mixup for Text Classification",
/// Findings of ACL; reference code github.com/clovaai/ssmix, augmentation/ssmix.py and trainer.py):
/// each example A of a batch, with its partner B (<see cref="MixSampler"/>'s permutation), gets the
/// least salient span of its tokens replaced by the most salient span of B's of the same length, at
/// the token-id level, and keeps the label weight λ = 1 − span / |A|.
///
/// As the reference code does it:
/// - saliency: the L2 norm of the loss gradient at each token's embedding, from one extra forward and
///   backward of the unmixed batch with its labels, dropout on (its get_saliency runs in train mode)
///   (<see cref="IBertEngine.TokenSaliency"/>). Difference: the reference takes the gradient at the
///   output of BertEmbeddings (after its LayerNorm and dropout); here, as the paper's words say ("the
///   input embedding"), at the sum of word, position and type embeddings, before the LayerNorm. Its
///   per-example scaling (by the maximum) does not change which span wins, and is left out.
/// - span length: a share of A's tokens with [CLS] and [SEP] left out, |A| = length − 2, at least one
///   token: k = max(⌊share·|A|⌋, 1), share 0.1 by default (its --ss_winsize 10, in percent). It
///   depends on A alone; B's span is searched in B's own tokens, whatever B's length.
/// - spans are windows of k consecutive tokens inside [CLS] … [SEP] (never a special token or
///   padding): A's with the least summed saliency, B's with the greatest (its avg_pool1d + argmin /
///   argmax with the windows that touch [CLS] or [SEP] ruled out); the first one wins a tie, as
///   torch's argmin/argmax.
/// - a partner with fewer than k tokens of its own leaves A unmixed (λ = 1). The reference's test is
///   length(B) &lt; k with [CLS] and [SEP] counted, which lets a span take in B's [CLS] or [SEP] when B
///   has nearly no tokens; here B must hold k tokens of its own.
/// - A keeps its positions, token types and attention mask; only input ids change.
/// - training objective: the reference's trainer.py (train_augment, without --naive_augment) trains
///   on the mean of the unmixed batch's cross-entropy and the mixed batch's mixed cross-entropy,
///   λ·CE(y_A) + (1 − λ)·CE(y_B), in one optimizer step. This follows it by one batch of 2B rows: the
///   B unmixed examples (λ = 1), then the B mixed ones (<see cref="Build"/>), whose mean loss is that
///   mean of the two.
/// Not followed: the reference splits a batch in halves and pairs half with half (each pair mixed
/// both ways); here each example has one partner from a permutation of the whole batch, as the other
/// modes. Sentence pairs are treated as the reference treats its NLI tasks: one sequence, whose windows
/// may take in the [SEP] between the two texts; A keeps its token types.
/// </summary>
public static class SpanMix
{
    /// <summary>The reference code's default span: 10% of the example's tokens.</summary>
    public const float DefaultSpan = 0.1f;

    /// <summary>One example's replacement: its tokens [Start, Start + Length) become its partner's
    /// [PartnerStart, PartnerStart + Length); Length 0: the example stays as it is.</summary>
    public readonly record struct Replacement(int Start, int PartnerStart, int Length, float Lambda);

    /// <summary>An ssmix step's host side: the saliency pass on <paramref name="engine"/> (dropout
    /// masks of <paramref name="seed"/> and <paramref name="step"/>, the training step's own), the spans,
    /// and the training batch of 2B rows with its loss-only mix.</summary>
    public static (Batch Batch, Mix Mix) Apply(IBertEngine engine, Batch batch, Mix mix, float share, ulong seed, long step)
    {
        if (!BertSchedule.MixesTokens(mix)) throw new ArgumentException("ssmix: the mix must be a token mix (MixSite.Tokens)");
        var saliency = new float[batch.BatchSize * batch.SeqLen];
        engine.TokenSaliency(batch, seed, step, saliency);
        var spans = new Replacement[batch.BatchSize];
        Choose(saliency, batch, mix.Partner, share, spans);
        return Build(batch, mix.Partner, spans);
    }

    /// <summary>The span each example receives from its partner, from the token saliency [B, T].</summary>
    public static void Choose(ReadOnlySpan<float> saliency, Batch batch, ReadOnlySpan<int> partner, float share, Span<Replacement> spans)
    {
        int B = batch.BatchSize, T = batch.SeqLen;
        if (saliency.Length < B * T || partner.Length < B || spans.Length < B) throw new ArgumentException("ssmix: saliency, partner and spans need one entry per token, example and example");
        if (!(share > 0f && share <= 1f)) throw new ArgumentException($"ssmix: the span share must be in (0, 1], not {share}");
        var mask = batch.AttentionMask;
        for (int b = 0; b < B; b++)
        {
            int p = partner[b];
            if ((uint)p >= (uint)B) throw new ArgumentException($"ssmix: partner {p} of example {b} is outside the batch");
            int own = Length(mask, b, T) - 2, other = Length(mask, p, T) - 2; // tokens between [CLS] and [SEP]
            // ⌊share·|A|⌋ as the reference's int(): the tolerance keeps a float share such as 0.7f
            // (0.69999999) from losing a token where the product is a whole number
            int k = own < 1 ? 0 : Math.Max((int)(share * (double)own + 1e-6), 1);
            if (k == 0 || k > other) { spans[b] = new Replacement(0, 0, 0, 1f); continue; }
            int start = Window(saliency.Slice(b * T, T), own, k, most: false);
            int partnerStart = Window(saliency.Slice(p * T, T), other, k, most: true);
            spans[b] = new Replacement(start, partnerStart, k, (float)(1.0 - (double)k / own));
        }
    }

    /// <summary>
    /// The training batch of an ssmix step: rows 0…B−1 the batch as it is (partner itself, λ = 1), rows
    /// B…2B−1 the mixed examples (example b's ids with its span replaced; its partner's label through
    /// partner index p_b; λ from its span). The mix's site is <see cref="MixSite.Tokens"/>: the engines
    /// train it as a plain batch whose loss is the mixed cross-entropy.
    /// </summary>
    public static (Batch Batch, Mix Mix) Build(Batch batch, ReadOnlySpan<int> partner, ReadOnlySpan<Replacement> spans)
    {
        int B = batch.BatchSize, T = batch.SeqLen, n = B * T;
        var ids = new int[2 * n]; var types = new int[2 * n]; var mask = new float[2 * n]; var labels = new int[2 * B];
        for (int half = 0; half < 2; half++)
        {
            batch.InputIds.CopyTo(ids.AsSpan(half * n));
            batch.TokenTypeIds.CopyTo(types.AsSpan(half * n));
            batch.AttentionMask.CopyTo(mask.AsSpan(half * n));
            batch.Labels.CopyTo(labels.AsSpan(half * B));
        }
        var mixPartner = new int[2 * B]; var lambda = new float[2 * B];
        for (int b = 0; b < B; b++)
        {
            var s = spans[b];
            mixPartner[b] = b; lambda[b] = 1f;
            mixPartner[B + b] = partner[b]; lambda[B + b] = s.Lambda;
            if (s.Length > 0)
                batch.InputIds.Slice(partner[b] * T + s.PartnerStart, s.Length).CopyTo(ids.AsSpan(n + b * T + s.Start, s.Length));
        }
        return (new Batch(T, batch.NumLabels, ids, mask, labels, types), new Mix(MixSite.Tokens, mixPartner, lambda));
    }

    /// <summary>The examples an ssmix step trains on for a batch of <paramref name="batchSize"/>: the
    /// unmixed batch and the mixed one (what its activations are sized for).</summary>
    public static int StepRows(MixMode mode, int batchSize) => mode == MixMode.SsMix ? 2 * batchSize : batchSize;

    /// <summary>Real tokens of example b ([CLS] and [SEP] included): the batches are padded on the right.</summary>
    private static int Length(ReadOnlySpan<float> mask, int b, int T)
    {
        var row = mask.Slice(b * T, T);
        int length = row.IndexOf(0f);
        if (length < 0) length = T;
        if (row[length..].ContainsAnyExcept(0f)) throw new ArgumentException($"ssmix: the attention mask of example {b} has a gap; batches must be padded on the right");
        return length;
    }

    /// <summary>The start of the window of k tokens among tokens 1…count (between [CLS] and [SEP]) with
    /// the least (or greatest) summed saliency; the first such window wins a tie.</summary>
    private static int Window(ReadOnlySpan<float> saliency, int count, int k, bool most)
    {
        int best = 1;
        double bestSum = 0;
        for (int s = 1; s + k - 1 <= count; s++)
        {
            double sum = 0;
            for (int t = s; t < s + k; t++) sum += saliency[t];
            if (s == 1 || (most ? sum > bestSum : sum < bestSum)) { best = s; bestSum = sum; }
        }
        return best;
    }
}
