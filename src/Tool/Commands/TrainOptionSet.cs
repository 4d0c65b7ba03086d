using System.CommandLine;
using System.CommandLine.Parsing;
using MixupBert.Model.Bert;
using MixupBert.Model.Training;

namespace MixupBert.Tool.Commands;

/// <summary>The options every training command shares (train, compare), and how they become <see cref="TrainOptions"/>.</summary>
public sealed class TrainOptionSet
{
    public readonly Option<string> Model = new("--model") { Description = "Hub model id or local folder (config.json, model.safetensors, vocab.txt)", DefaultValueFactory = _ => "google-bert/bert-base-cased" };
    public readonly Option<string> Dataset = new("--dataset") { Description = "Hub dataset id or local file/folder (parquet, csv, tsv, jsonl)", DefaultValueFactory = _ => "cornell-movie-review-data/rotten_tomatoes" };
    public readonly Option<string> Revision = new("--revision") { Description = "Hub revision of the model and dataset", DefaultValueFactory = _ => "main" };
    public readonly Option<string> TextColumn = new("--text-column") { Description = "Column holding the text", DefaultValueFactory = _ => "text" };
    public readonly Option<string> LabelColumn = new("--label-column") { Description = "Column holding the label (integers or strings)", DefaultValueFactory = _ => "label" };
    public readonly Option<string> Mode = new("--mode") { Description = "baseline, mixup (word-embedding mixup), tmix (hidden states) or senmix (pooled [CLS])", DefaultValueFactory = _ => "mixup" };
    public readonly Option<int> Epochs = new("--epochs") { Description = "Training epochs", DefaultValueFactory = _ => 3 };
    public readonly Option<int> BatchSize = new("--batch-size") { Description = "Training batch size", DefaultValueFactory = _ => 32 };
    public readonly Option<int> EvalBatchSize = new("--eval-batch-size") { Description = "Evaluation batch size", DefaultValueFactory = _ => 64 };
    public readonly Option<float> Lr = new("--lr") { Description = "Peak learning rate (AdamW)", DefaultValueFactory = _ => 5e-5f };
    public readonly Option<float> WarmupRatio = new("--warmup-ratio") { Description = "Share of steps with linear warm-up before the linear decay", DefaultValueFactory = _ => 0f };
    public readonly Option<float> WeightDecay = new("--weight-decay") { Description = "AdamW weight decay (not on biases and LayerNorm weights)", DefaultValueFactory = _ => 0.01f };
    public readonly Option<float> MaxGradNorm = new("--max-grad-norm") { Description = "Clip the global gradient norm to this (0: no clipping)", DefaultValueFactory = _ => 1f };
    public readonly Option<int> MaxLength = new("--max-length") { Description = "Truncate sequences to this many tokens, [CLS] and [SEP] included", DefaultValueFactory = _ => 128 };
    public readonly Option<int?> PadTo = new("--pad-to") { Description = "Pad every batch to this length instead of its longest sequence (a benchmark baseline)" };
    public readonly Option<bool> GroupByLength = new("--group-by-length") { Description = "Batch sequences of similar length together (less padding)" };
    public readonly Option<int> Seed = new("--seed") { Description = "Seed of shuffling, mixing, dropout, splits and initialisation", DefaultValueFactory = _ => 42 };
    public readonly Option<string> Metric = new("--metric") { Description = "Validation metric that picks the best epoch: accuracy, f1, precision, recall, loss, ece", DefaultValueFactory = _ => "accuracy" };
    public readonly Option<float> Alpha = new("--alpha") { Description = "λ ~ Beta(alpha, beta)", DefaultValueFactory = _ => 1f };
    public readonly Option<float> Beta = new("--beta") { Description = "λ ~ Beta(alpha, beta)", DefaultValueFactory = _ => 1f };
    public readonly Option<bool> LambdaPerExample = new("--lambda-per-example") { Description = "Draw λ per example instead of per batch" };
    public readonly Option<float> MixProb = new("--mix-prob") { Description = "Share of batches that are mixed", DefaultValueFactory = _ => 1f };
    public readonly Option<string?> MixLayers = new("--mix-layers") { Description = "TMix: layers after which to mix, e.g. 7,9,12 (default: 7,9,12 scaled to the model's depth)" };
    public readonly Option<int?> TrainSize = new("--train-size") { Description = "Train on a seeded stratified subset of this many examples" };
    public readonly Option<int?> PerClass = new("--per-class") { Description = "Train on a seeded subset of this many examples per class (few-shot)" };
    public readonly Option<string?> Preset = new("--preset") { Description = "notebook: the notebook's settings (lr 8e-5, batch 32, 10 epochs, padding to 256, α = β = 1)" };
    public readonly Option<int> LoggingSteps = new("--logging-steps") { Description = "Write a training-loss record to metrics.jsonl every this many steps", DefaultValueFactory = _ => 50 };
    public readonly Option<string> Backend = new("--backend") { Description = "auto (CUDA when a GPU and the kernels are there), cpu or cuda", DefaultValueFactory = _ => "auto" };
    public readonly Option<int?> Threads = new("--threads") { Description = "CPU worker threads (default: all cores); results are reproducible for a given count" };
    public readonly Option<string> Tf32 = new("--tf32") { Description = "GPU GEMMs in TF32: on, off or auto (on for Ampere and newer)", DefaultValueFactory = _ => "auto" };

    public void AddTo(Command command)
    {
        foreach (var o in new Option[] { Model, Dataset, Revision, TextColumn, LabelColumn, Mode, Epochs, BatchSize, EvalBatchSize, Lr, WarmupRatio,
                     WeightDecay, MaxGradNorm, MaxLength, PadTo, GroupByLength, Seed, Metric, Alpha, Beta, LambdaPerExample, MixProb, MixLayers,
                     TrainSize, PerClass, Preset, LoggingSteps, Backend, Threads, Tf32 })
            command.Options.Add(o);
    }

    public static MixMode ParseMode(string mode) => mode switch
    {
        "baseline" => MixMode.Baseline, "mixup" => MixMode.Mixup, "tmix" => MixMode.TMix, "senmix" => MixMode.SenMix,
        _ => throw new ArgumentException($"unknown --mode '{mode}' (baseline, mixup, tmix or senmix)"),
    };

    /// <summary>The options as given; a preset first supplies its values, then every option given explicitly wins.</summary>
    public TrainOptions Read(ParseResult parse)
    {
        var o = new TrainOptions();
        var preset = parse.GetValue(Preset);
        if (preset != null)
        {
            if (preset != "notebook") throw new ArgumentException($"unknown --preset '{preset}' (notebook)");
            o = o.WithNotebookPreset();
        }
        bool Given(Option option) => parse.GetResult(option) is OptionResult r && !r.Implicit;
        T Pick<T>(Option<T> option, T current) => Given(option) || preset == null ? parse.GetValue(option)! : current;
        o = o with
        {
            Mode = ParseMode(parse.GetValue(Mode)!),
            Epochs = Pick(Epochs, o.Epochs),
            BatchSize = Pick(BatchSize, o.BatchSize),
            EvalBatchSize = parse.GetValue(EvalBatchSize),
            LearningRate = Pick(Lr, o.LearningRate),
            WarmupRatio = parse.GetValue(WarmupRatio),
            WeightDecay = parse.GetValue(WeightDecay),
            MaxGradNorm = parse.GetValue(MaxGradNorm),
            MaxLength = Pick(MaxLength, o.MaxLength),
            PadTo = Given(PadTo) ? parse.GetValue(PadTo) : o.PadTo,
            GroupByLength = parse.GetValue(GroupByLength),
            Seed = parse.GetValue(Seed),
            Metric = parse.GetValue(Metric)!,
            Alpha = Pick(Alpha, o.Alpha),
            Beta = Pick(Beta, o.Beta),
            LambdaPerExample = parse.GetValue(LambdaPerExample),
            MixProbability = parse.GetValue(MixProb),
            MixLayers = parse.GetValue(MixLayers) is string layers
                ? layers.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(s => int.TryParse(s, out int k) ? k : throw new ArgumentException($"--mix-layers: '{s}' is not a layer number")).ToArray()
                : null,
            TrainSize = parse.GetValue(TrainSize),
            PerClass = parse.GetValue(PerClass),
            LoggingSteps = parse.GetValue(LoggingSteps),
        };
        o.Validate();
        return o;
    }
}
