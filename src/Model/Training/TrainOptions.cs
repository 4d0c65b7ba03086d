namespace MixupBert.Model.Training;

/// <summary>Everything that shapes a fine-tuning run; HF Trainer's defaults where it has one.</summary>
public sealed record TrainOptions
{
    public MixMode Mode { get; init; } = MixMode.Mixup;
    public int Epochs { get; init; } = 3;
    public int BatchSize { get; init; } = 32;
    public int EvalBatchSize { get; init; } = 64;
    public float LearningRate { get; init; } = 5e-5f;
    public float WarmupRatio { get; init; }
    public float WeightDecay { get; init; } = 0.01f;
    public float MaxGradNorm { get; init; } = 1f;
    public int MaxLength { get; init; } = 128;
    /// <summary>Pad every batch to this length (the notebook's 256) instead of its longest sequence.</summary>
    public int? PadTo { get; init; }
    public bool GroupByLength { get; init; }
    public int Seed { get; init; } = 42;
    public string Metric { get; init; } = "accuracy";
    public float Alpha { get; init; } = 1f;
    public float Beta { get; init; } = 1f;
    public bool LambdaPerExample { get; init; }
    public float MixProbability { get; init; } = 1f;
    /// <summary>TMix's candidate layers (1-based: mix after layer k); null = 7, 9, 12 scaled to the depth.</summary>
    public int[]? MixLayers { get; init; }
    public int? TrainSize { get; init; }
    public int? PerClass { get; init; }
    public int LoggingSteps { get; init; } = 50;

    /// <summary>The notebook's settings, for comparison with it: lr 8e-5, batch 32, 10 epochs, padding to 256, α = β = 1.</summary>
    public TrainOptions WithNotebookPreset() => this with { LearningRate = 8e-5f, BatchSize = 32, Epochs = 10, PadTo = 256, MaxLength = 256, Alpha = 1f, Beta = 1f };

    public void Validate()
    {
        void Check(bool ok, string message) { if (!ok) throw new ArgumentException(message); }
        Check(Epochs >= 1, "--epochs must be at least 1");
        Check(BatchSize >= 1 && EvalBatchSize >= 1, "--batch-size must be at least 1");
        Check(LearningRate > 0 && float.IsFinite(LearningRate), "--lr must be positive");
        Check(WarmupRatio is >= 0 and < 1, "--warmup-ratio must be in [0, 1)");
        Check(MaxLength >= 2, "--max-length must be at least 2 ([CLS] and [SEP])");
        Check(Alpha > 0 && Beta > 0, "--alpha and --beta must be positive");
        Check(MixProbability is >= 0 and <= 1, "--mix-prob must be in [0, 1]");
        Check(TrainSize is null || TrainSize > 0, "--train-size must be positive");
        Check(PerClass is null || PerClass > 0, "--per-class must be positive");
        Check(TrainSize is null || PerClass is null, "--train-size and --per-class exclude each other");
        Check(LoggingSteps >= 1, "--logging-steps must be at least 1");
        Check(PadTo is null || PadTo >= MaxLength, "padding length must be at least --max-length");
        _ = new ClassificationMetrics(0, 0, 0, 0, 0, 0, 0).Get(Metric);
    }
}
