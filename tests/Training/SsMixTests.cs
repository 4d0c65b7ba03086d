using MixupBert.Model.Bert;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Training;

/// <summary>SSMix's span choice and its training batch, on hand-made examples and hand-set saliency.</summary>
public class SsMixTests
{
    private const int T = 10, Cls = 101, Sep = 102;

    /// <summary>
    /// Four examples (ids: [CLS], then 10·(b+1) + t at position t, [SEP], padding 0) of 8, 6, 1 and 8
    /// tokens between [CLS] and [SEP]; partners 0←1, 1←3, 2←0, 3←2; labels 0, 1, 1, 0.
    /// </summary>
    private static Batch HandMade()
    {
        int[] lengths = [10, 8, 3, 10]; // [CLS] and [SEP] included
        var ids = new int[4 * T]; var mask = new float[4 * T]; var types = new int[4 * T];
        for (int b = 0; b < 4; b++)
            for (int t = 0; t < lengths[b]; t++)
            {
                ids[b * T + t] = t == 0 ? Cls : t == lengths[b] - 1 ? Sep : 10 * (b + 1) + t;
                mask[b * T + t] = 1;
                types[b * T + t] = b == 3 && t >= 5 ? 1 : 0; // a second segment, kept as it is
            }
        return new Batch(T, 2, ids, mask, [0, 1, 1, 0], types);
    }

    private static readonly int[] Partner = [1, 3, 0, 2];

    /// <summary>
    /// Hand-set saliency. Each row makes a wrong rule pick another span: [CLS], [SEP] and padding hold
    /// the most extreme values (0 where the least salient span is sought, the greatest where the most
    /// salient is), and the wanted windows tie with a later one (the first must win).
    /// </summary>
    private static readonly float[] Saliency =
    [
        0f, 0.5f, 4f, 1f, 1f, 7f, 1f, 1f, 8f, 0f,      // example 0 (A, k = 2): windows 3–4 and 6–7 sum to 2; [CLS]+1 would be 0.5
        3f, 6f, 2f, 9f, 0.25f, 5f, 7f, 20f, 0f, 0f,   // example 1: A (k = 1): token 4; as B for 0 (k = 2): tokens 5–6 (12; 6–[SEP] would be 27)
        0f, 2f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f,       // example 2: one token of its own
        50f, 1f, 2f, 3f, 10f, 4f, 10f, 5f, 6f, 60f,   // example 3: as B for 1 (k = 1): token 4 ties with 6, the first wins; [CLS] and [SEP] larger
    ];

    [Fact]
    public void AStepReplacesTheLeastSalientSpanWithThePartnersMostSalientOneAndWeighsTheLabelsByWhatIsKept()
    {
        var batch = HandMade();
        var spans = new SpanMix.Replacement[4];
        SpanMix.Choose(Saliency, batch, Partner, share: 0.25f, spans);
        Assert.Equal(new SpanMix.Replacement[]
        {
            new(Start: 3, PartnerStart: 5, Length: 2, Lambda: 0.75f),       // ⌊0.25·8⌋ = 2 tokens of 8 replaced
            new(Start: 4, PartnerStart: 4, Length: 1, Lambda: (float)(1 - 1.0 / 6)), // ⌊0.25·6⌋ = 1 of 6
            new(Start: 1, PartnerStart: 8, Length: 1, Lambda: 0f),          // at least one token: its only one
            new(Start: 0, PartnerStart: 0, Length: 0, Lambda: 1f),          // needs 2, its partner has 1: unmixed
        }, spans);

        // the step as the trainer runs it: the saliency pass on the engine, then the batch of 2B rows
        var engine = new FixedSaliency(Saliency);
        var (step, mix) = SpanMix.Apply(engine, batch, new Mix(MixSite.Tokens, Partner, [1f, 1f, 1f, 1f]), 0.25f, seed: 9, step: 12);
        Assert.Equal((9UL, 12L), (engine.Seed, engine.Step)); // the training step's dropout masks
        Assert.Equal(8, step.BatchSize);
        int[] mixed =
        [
            Cls, 11, 12, 25, 26, 15, 16, 17, 18, Sep, // tokens 3–4 ← example 1's 5–6
            Cls, 21, 22, 23, 44, 25, 26, Sep, 0, 0,   // token 4 ← example 3's 4
            Cls, 18, Sep, 0, 0, 0, 0, 0, 0, 0,        // token 1 ← example 0's 8
            Cls, 41, 42, 43, 44, 45, 46, 47, 48, Sep, // unmixed
        ];
        int[] ids = [.. batch.InputIds, .. mixed], types = [.. batch.TokenTypeIds, .. batch.TokenTypeIds], labels = [0, 1, 1, 0, 0, 1, 1, 0];
        float[] masks = [.. batch.AttentionMask, .. batch.AttentionMask];
        Assert.Equal(ids, step.InputIds.ToArray());
        Assert.Equal(masks, step.AttentionMask.ToArray()); // positions, types and masks are A's
        Assert.Equal(types, step.TokenTypeIds.ToArray());
        Assert.Equal(labels, step.Labels.ToArray());
        Assert.Equal(MixSite.Tokens, mix.Site);
        int[] partners = [0, 1, 2, 3, 1, 3, 0, 2]; // the unmixed rows are their own partners
        float[] lambdas = [1f, 1f, 1f, 1f, 0.75f, (float)(1 - 1.0 / 6), 0f, 1f];
        Assert.Equal(partners, mix.Partner);
        Assert.Equal(lambdas, mix.Lambda);
    }

    [Theory]
    [InlineData(0.1f, 8, 1)]   // the paper's share: ⌊0.8⌋ = 0, at least 1
    [InlineData(0.1f, 30, 3)]
    [InlineData(0.7f, 10, 7)]  // 0.7f is 0.69999999: still 7
    [InlineData(1f, 8, 8)]
    public void TheSpanIsAShareOfTheExamplesOwnTokens(float share, int own, int expected)
    {
        int t = own + 2;
        var ids = new int[2 * t]; var mask = new float[2 * t];
        Array.Fill(ids, 5); Array.Fill(mask, 1f);
        var batch = new Batch(t, 2, ids, mask, [0, 1]);
        var spans = new SpanMix.Replacement[2];
        SpanMix.Choose(new float[2 * t], batch, [1, 0], share, spans);
        Assert.Equal(expected, spans[0].Length);
        Assert.Equal((float)(1 - (double)expected / own), spans[0].Lambda);
    }

    [Fact]
    public void AGapInTheMaskIsRefused()
    {
        var batch = new Batch(4, 2, new int[8], [1, 1, 0, 1, 1, 1, 1, 1], [0, 1]);
        var e = Assert.Throws<ArgumentException>(() => SpanMix.Choose(new float[8], batch, [1, 0], 0.5f, new SpanMix.Replacement[2]));
        Assert.Contains("padded on the right", e.Message);
    }

    [Fact]
    public void TheSamplerDrawsPartnersAndLeavesEveryTokenItsOwn()
    {
        var mix = new MixSampler(MixMode.SsMix).Sample(6, new Random(3))!;
        Assert.Equal(MixSite.Tokens, mix.Site);
        Assert.Equal(Enumerable.Range(0, 6), mix.Partner.Order());
        Assert.All(mix.Lambda, l => Assert.Equal(1f, l));
        Assert.False(BertSchedule.NeedsUnionMask(mix)); // an ssmix example keeps its own mask
    }

    /// <summary>An engine whose saliency pass returns fixed values; nothing else is asked of it.</summary>
    private sealed class FixedSaliency(float[] saliency) : IBertEngine
    {
        public ulong Seed; public long Step;
        public void TokenSaliency(Batch batch, ulong seed, long step, Span<float> output) { (Seed, Step) = (seed, step); saliency.CopyTo(output); }
        public string Backend => "fixed saliency";
        public Model.Weights.BertConfig Config => throw new NotSupportedException();
        public BertLayout Layout => throw new NotSupportedException();
        public void StartTrainStep(Batch batch, Mix? mix, float lr, long step, ulong seed, in OptimizerSettings o) => throw new NotSupportedException();
        public StepResult FinishTrainStep() => throw new NotSupportedException();
        public void Reserve(int batchSize, int seqLen) { }
        public double Evaluate(Batch batch, Span<float> p) => throw new NotSupportedException();
        public double ForwardBackward(Batch batch, Mix? mix, ulong seed, long step) => throw new NotSupportedException();
        public void CopyLogits(Span<float> d) => throw new NotSupportedException();
        public void CopyGradients(Span<float> d) => throw new NotSupportedException();
        public void CopyParameters(Span<float> d) => throw new NotSupportedException();
        public void CopyOptimizerState(Span<float> m, Span<float> v) => throw new NotSupportedException();
        public void LoadState(ReadOnlySpan<float> p, ReadOnlySpan<float> m, ReadOnlySpan<float> v) => throw new NotSupportedException();
        public void Dispose() { }
    }
}
