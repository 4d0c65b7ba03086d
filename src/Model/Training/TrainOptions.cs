using MixupBert.Model.Bert;

namespace MixupBert.Model.Training;

/// <summary>Everything that shapes a fine-tuning run. The optimiser's defaults are HF Trainer's (lr 5e-5, AdamW
/// betas and eps, no warm-up, clipping at 1.0, 3 epochs); batch 32 and weight decay 0.01 are BERT's usual
/// fine-tuning recipe, where Trainer's defaults are 8 and 0 (README, "train options").</summary>
public sealed record TrainOptions
{
    public MixMode Mode { get; init; } = MixMode.Mixup;
    public int Epochs { get; init; } = 3;
    /// <summary>At least this many optimizer steps: a small train set gets more epochs (0: --epochs only).</summary>
    public int MinSteps { get; init; }
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
    /// <summary>SSMix's span: a share of each example's tokens ([CLS] and [SEP] left out), at least one token.</summary>
    public float SsMixSpan { get; init; } = SpanMix.DefaultSpan;

    /// <summary>The last option (declared first: static fields are set in order): --help lists --preset, and args.json records train_examples, just before it.</summary>
    public static readonly TrainOption<int> LoggingStepsOption = Of("--logging-steps", "logging_steps",
        "Write a training-loss record to metrics.jsonl every this many steps", o => o.LoggingSteps, (o, v) => o with { LoggingSteps = v });

    /// <summary>
    /// Every option, in the order of --help and of args.json: command-line name, args.json key, help
    /// text, and how to read and set it. The defaults are the initial values above.
    /// </summary>
    public static readonly IReadOnlyList<TrainOption> All =
    [
        Of("--mode", "mode", "baseline, mixup (word-embedding mixup), tmix (hidden states), senmix (pooled [CLS]) or ssmix (saliency-based span mixup of token ids)", o => o.Mode, (o, v) => o with { Mode = v }),
        Of("--epochs", "epochs", "Training epochs", o => o.Epochs, (o, v) => o with { Epochs = v }),
        Of("--min-steps", "min_steps", "At least this many optimizer steps: epochs = max(--epochs, ceil(N / steps per epoch)) (0: --epochs only)", o => o.MinSteps, (o, v) => o with { MinSteps = v }),
        Of("--batch-size", "batch_size", "Training batch size", o => o.BatchSize, (o, v) => o with { BatchSize = v }),
        Of("--eval-batch-size", "eval_batch_size", "Evaluation batch size", o => o.EvalBatchSize, (o, v) => o with { EvalBatchSize = v }),
        Of("--lr", "learning_rate", "Peak learning rate (AdamW)", o => o.LearningRate, (o, v) => o with { LearningRate = v }),
        Of("--warmup-ratio", "warmup_ratio", "Share of steps with linear warm-up before the linear decay", o => o.WarmupRatio, (o, v) => o with { WarmupRatio = v }),
        Of("--weight-decay", "weight_decay", "AdamW weight decay (not on biases and LayerNorm weights)", o => o.WeightDecay, (o, v) => o with { WeightDecay = v }),
        Of("--max-grad-norm", "max_grad_norm", "Clip the global gradient norm to this (0: no clipping)", o => o.MaxGradNorm, (o, v) => o with { MaxGradNorm = v }),
        Of("--max-length", "max_length", "Truncate sequences to this many tokens, [CLS] and [SEP] included", o => o.MaxLength, (o, v) => o with { MaxLength = v }),
        Of("--pad-to", "pad_to", "Pad every batch to this length instead of its longest sequence (a benchmark baseline)", o => o.PadTo, (o, v) => o with { PadTo = v }),
        Of("--group-by-length", "group_by_length", "Batch sequences of similar length together (less padding)", o => o.GroupByLength, (o, v) => o with { GroupByLength = v }),
        Of("--seed", "seed", "Seed of shuffling, mixing, dropout, splits and initialisation", o => o.Seed, (o, v) => o with { Seed = v }),
        Of("--metric", "metric", "Validation metric that picks the best epoch: accuracy, f1, precision, recall, loss, ece", o => o.Metric, (o, v) => o with { Metric = v }),
        Of("--alpha", "alpha", "λ ~ Beta(alpha, beta)", o => o.Alpha, (o, v) => o with { Alpha = v }),
        Of("--beta", "beta", "λ ~ Beta(alpha, beta)", o => o.Beta, (o, v) => o with { Beta = v }),
        Of("--lambda-per-example", "lambda_per_example", "Draw λ per example instead of per batch", o => o.LambdaPerExample, (o, v) => o with { LambdaPerExample = v }),
        Of("--mix-prob", "mix_prob", "Share of batches that are mixed", o => o.MixProbability, (o, v) => o with { MixProbability = v }),
        Of("--mix-layers", "mix_layers", "TMix: layers after which to mix, e.g. 7,9,12 (default: 7,9,12 scaled to the model's depth)", o => o.MixLayers, (o, v) => o with { MixLayers = v }),
        Of("--train-size", "train_size", "Train on a seeded stratified subset of this many examples", o => o.TrainSize, (o, v) => o with { TrainSize = v }),
        Of("--per-class", "per_class", "Train on a seeded subset of this many examples per class (few-shot)", o => o.PerClass, (o, v) => o with { PerClass = v }),
        Of("--ssmix-span", "ssmix_span", "SSMix: the replaced span as a share of each example's tokens, [CLS] and [SEP] left out, at least one token (the paper's 0.1)", o => o.SsMixSpan, (o, v) => o with { SsMixSpan = v }),
        LoggingStepsOption,
    ];

    private static TrainOption<T> Of<T>(string name, string key, string description, Func<TrainOptions, T> get, Func<TrainOptions, T, TrainOptions> with) =>
        new(name, key, description, get, with);

    /// <summary>A mode as the command line and the run records spell it.</summary>
    public static string ModeName(MixMode mode) => mode.ToString().ToLowerInvariant();

    /// <summary>The epochs a run trains: --epochs, or more where --min-steps asks for more optimizer steps
    /// than --epochs gives at <paramref name="stepsPerEpoch"/> (the batches of an epoch).</summary>
    public int EffectiveEpochs(int stepsPerEpoch) =>
        MinSteps <= 0 || stepsPerEpoch <= 0 ? Epochs : Math.Max(Epochs, (MinSteps + stepsPerEpoch - 1) / stepsPerEpoch);

    /// <summary>The notebook's settings, for comparison with it: lr 8e-5, batch 32, 10 epochs, padding to 256, α = β = 1.</summary>
    public TrainOptions WithNotebookPreset() => this with { LearningRate = 8e-5f, BatchSize = 32, Epochs = 10, PadTo = 256, MaxLength = 256, Alpha = 1f, Beta = 1f };

    /// <summary>Every option finite and in range, checked before anything is written. The upper
    /// bounds are far past any real run; they keep step and buffer arithmetic inside int.</summary>
    public void Validate()
    {
        void Check(bool ok, string message) { if (!ok) throw new ArgumentException(message); }
        const int MaxBatch = 1 << 16, MaxTokens = 1 << 16;
        Check(Epochs is >= 1 and <= 100_000, $"--epochs must be in 1..100000, not {Epochs}");
        Check(MinSteps is >= 0 and <= 10_000_000, $"--min-steps must be in 0..10000000, not {MinSteps}");
        Check(BatchSize is >= 1 and <= MaxBatch, $"--batch-size must be in 1..{MaxBatch}, not {BatchSize}");
        Check(EvalBatchSize is >= 1 and <= MaxBatch, $"--eval-batch-size must be in 1..{MaxBatch}, not {EvalBatchSize}");
        Check(LearningRate > 0 && float.IsFinite(LearningRate), $"--lr must be a positive finite number, not {LearningRate}");
        Check(WarmupRatio is >= 0 and < 1, $"--warmup-ratio must be in [0, 1), not {WarmupRatio}");
        Check(WeightDecay >= 0 && float.IsFinite(WeightDecay), $"--weight-decay must be a finite number ≥ 0, not {WeightDecay}");
        Check(MaxGradNorm >= 0 && float.IsFinite(MaxGradNorm), $"--max-grad-norm must be a finite number ≥ 0 (0: no clipping), not {MaxGradNorm}");
        Check(MaxLength is >= 2 and <= MaxTokens, $"--max-length must be in 2..{MaxTokens} ([CLS] and [SEP] included), not {MaxLength}");
        // float.Parse reads 1e39 as ∞: say so rather than fail later when ∞ reaches a JSON record
        Check(Alpha > 0 && Beta > 0 && float.IsFinite(Alpha) && float.IsFinite(Beta), $"--alpha and --beta must be positive finite numbers (float32), not {Alpha} and {Beta}");
        Check(MixProbability is >= 0 and <= 1, $"--mix-prob must be in [0, 1], not {MixProbability}");
        Check(TrainSize is null || TrainSize > 0, "--train-size must be positive");
        Check(PerClass is null || PerClass > 0, "--per-class must be positive");
        Check(TrainSize is null || PerClass is null, "--train-size and --per-class exclude each other");
        Check(LoggingSteps >= 1, "--logging-steps must be at least 1");
        Check(PadTo is null || (PadTo >= MaxLength && PadTo <= MaxTokens), $"--pad-to must be in --max-length..{MaxTokens}");
        Check(MixLayers is null || MixLayers.All(k => k >= 1), "--mix-layers are layer numbers from 1");
        Check(SsMixSpan > 0 && SsMixSpan <= 1, $"--ssmix-span must be in (0, 1] (a share of each example's tokens), not {SsMixSpan}");
        _ = new ClassificationMetrics(0, 0, 0, 0, 0, 0, 0).Get(Metric);
    }
}
