using System.CommandLine;
using System.CommandLine.Parsing;
using MixupBert.Model.Bert;
using MixupBert.Model.Hub;
using MixupBert.Model.Training;

namespace MixupBert.Tool.Commands;

/// <summary>
/// The options every training command shares (train, compare): the run's inputs, one command-line
/// option per entry of <see cref="TrainOptions.All"/> (name, help text and default taken from there),
/// --preset, and the backend's options; and how they become <see cref="RunInputs"/> and <see cref="TrainOptions"/>.
/// </summary>
public sealed class TrainOptionSet
{
    private static readonly RunInputs DefaultInputs = new();
    public readonly Option<string> Model = new("--model") { Description = "Hub model id or local folder (config.json, model.safetensors, vocab.txt)", DefaultValueFactory = _ => DefaultInputs.Model };
    public readonly Option<string> Dataset = new("--dataset") { Description = "Hub dataset id or local file/folder (parquet, csv, tsv, jsonl)", DefaultValueFactory = _ => DefaultInputs.Dataset };
    public readonly Option<string> Revision = new("--revision") { Description = "Hub revision (branch, tag or commit) of the model, and of the dataset unless --dataset-revision is given", DefaultValueFactory = _ => DefaultInputs.Revision };
    public readonly Option<string?> DatasetRevision = new("--dataset-revision") { Description = "Hub revision of the dataset (e.g. refs/convert/parquet, the Hub's parquet conversion), when it is not --revision" };
    public readonly Option<string> TextColumn = new("--text-column") { Description = "Column holding the text", DefaultValueFactory = _ => DefaultInputs.TextColumn };
    public readonly Option<string?> TextPairColumn = new("--text-pair-column") { Description = "Column holding each example's second text, for sentence-pair classification (GLUE's sentence2, hypothesis, ...): [CLS] text [SEP] pair [SEP]" };
    public readonly Option<string> LabelColumn = new("--label-column") { Description = "Column holding the label (integers or strings)", DefaultValueFactory = _ => DefaultInputs.LabelColumn };
    public readonly Option<string?> Preset = new("--preset") { Description = "notebook: the notebook's settings (lr 8e-5, batch 32, 10 epochs, padding to 256, α = β = 1)" };
    public readonly Option<string> Backend = new("--backend") { Description = "auto (CUDA when a GPU and the kernels are there), cpu or cuda", DefaultValueFactory = _ => "auto" };
    public readonly Option<int?> Threads = new("--threads") { Description = "CPU worker threads (default: all cores); results are reproducible for a given count" };
    public readonly Option<string> Precision = new("--precision") { Description = Backends.PrecisionHelp, DefaultValueFactory = _ => "auto" };
    public readonly Option<double> CheckpointEvery = new("--checkpoint-every")
    {
        Description = "Seconds between resumable checkpoints: one is committed at the end of an epoch once this long has passed since the last " +
            "(0: after every epoch), and always where Ctrl-C stops the run",
        DefaultValueFactory = _ => DefaultCheckpointSeconds,
    };

    /// <summary>--checkpoint-every's default: a kill -9 loses at most this much training (and an epoch), and short runs
    /// (a GPU's, a grid's) write no checkpoint they would never resume from.</summary>
    public const double DefaultCheckpointSeconds = 300;

    /// <summary>--checkpoint-every, checked.</summary>
    public TimeSpan ReadCheckpointEvery(ParseResult parse)
    {
        double seconds = parse.GetValue(CheckpointEvery);
        if (!(seconds >= 0 && seconds <= 1e9)) throw new ArgumentException($"--checkpoint-every must be a number of seconds in 0..1e9, not {seconds}");
        return TimeSpan.FromSeconds(seconds);
    }

    private readonly IReadOnlyList<Binding> training = TrainOptions.All.Select(Bind).ToList();

    public void AddTo(Command command)
    {
        foreach (var o in new Option[] { Model, Dataset, Revision, DatasetRevision, TextColumn, TextPairColumn, LabelColumn }) command.Options.Add(o);
        foreach (var b in training)
        {
            if (b.Spec == TrainOptions.LoggingStepsOption) command.Options.Add(Preset); // where --help has always listed it
            command.Options.Add(b.Cli);
        }
        Precision.AcceptOnlyFromAmong("auto", "fp32", "tf32", "bf16");
        foreach (var o in new Option[] { Backend, Threads, Precision, CheckpointEvery }) command.Options.Add(o);
    }

    /// <summary>The inputs as given (args.json records them so, and a local one's absolute path beside: RunArgs.ModelPath).</summary>
    public RunInputs ReadInputs(ParseResult parse) => new(parse.GetValue(Model)!, parse.GetValue(Dataset)!, parse.GetValue(Revision)!,
        parse.GetValue(TextColumn)!, parse.GetValue(LabelColumn)!, parse.GetValue(TextPairColumn), parse.GetValue(DatasetRevision));

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
        foreach (var b in training)
        {
            bool given = parse.GetResult(b.Cli) is OptionResult r && !r.Implicit;
            if (given || preset == null) o = b.Apply(parse, o); // not given: the command line's default is the option's default
        }
        o.Validate();
        return o;
    }

    /// <summary>With --resume, which continues a run with the inputs and options it started with (its args.json):
    /// each one given on the command line (or by --preset) that is not the run's, as "--lr 0.001 (the run's: 5E-05)".
    /// The backend's options (--backend, --precision, --threads, --checkpoint-every) are not the run's: they may change.</summary>
    public List<string> ResumeConflicts(ParseResult parse, RunArgs recorded)
    {
        var conflicts = new List<string>();
        bool Given(Option option) => parse.GetResult(option) is OptionResult { Implicit: false };
        void Check(Option option, string? value, string? runs, bool same = false)
        {
            if (Given(option) && value != runs && !same) conflicts.Add($"{option.Name} {value ?? "(none)"} (the run's: {runs ?? "(none)"})");
        }
        var inputs = ReadInputs(parse);
        var was = recorded.Inputs;
        // a model or dataset spelt otherwise ("data/", an alias) or found where the run recorded it is the same
        bool Same(string given, string runs, string? path) => Sources.SameInput(given, runs) || (path != null && Sources.LocalPath(given) == path);
        Check(Model, inputs.Model, was.Model, Same(inputs.Model, was.Model, recorded.ModelPath));
        Check(Dataset, inputs.Dataset, was.Dataset, Same(inputs.Dataset, was.Dataset, recorded.DatasetPath));
        Check(Revision, inputs.Revision, was.Revision);
        Check(DatasetRevision, inputs.DatasetRevisionOrDefault, was.DatasetRevisionOrDefault);
        Check(TextColumn, inputs.TextColumn, was.TextColumn);
        Check(TextPairColumn, inputs.TextPairColumn, was.TextPairColumn);
        Check(LabelColumn, inputs.LabelColumn, was.LabelColumn);
        var options = Read(parse);
        bool preset = Given(Preset);
        foreach (var b in training)
        {
            string? value = Shown(b.Spec.ToJson(options)), runs = Shown(b.Spec.ToJson(recorded.Options));
            if ((preset || Given(b.Cli)) && value != runs) conflicts.Add($"{b.Spec.Name} {value ?? "(none)"} (the run's: {runs ?? "(none)"})");
        }
        return conflicts;
    }

    /// <summary>An args.json value as a command line gives it: a string without its quotes.</summary>
    private static string? Shown(System.Text.Json.Nodes.JsonNode? value) =>
        value is System.Text.Json.Nodes.JsonValue v && v.TryGetValue(out string? text) ? text : value?.ToJsonString();

    /// <summary>Whether the training option named <paramref name="name"/> (e.g. "--lr") was given on the command line
    /// (not its default, not a preset's value).</summary>
    public bool Given(ParseResult parse, string name) =>
        parse.GetResult(training.Single(b => b.Spec.Name == name).Cli) is OptionResult r && !r.Implicit;

    /// <summary>A mode by its command-line name (<see cref="TrainOptions.ModeName"/> of each <see cref="MixMode"/>).</summary>
    public static MixMode ParseMode(string mode) =>
        Enum.GetValues<MixMode>().Where(m => TrainOptions.ModeName(m) == mode).Select(m => (MixMode?)m).FirstOrDefault()
        ?? throw new ArgumentException($"unknown --mode '{mode}' ({string.Join(", ", Enum.GetValues<MixMode>().Select(TrainOptions.ModeName))})");

    private static int[]? ParseLayers(string? layers) => layers?.Split(',', StringSplitOptions.RemoveEmptyEntries)
        .Select(s => int.TryParse(s, out int k) ? k : throw new ArgumentException($"--mix-layers: '{s}' is not a layer number")).ToArray();

    /// <summary>A training option and its command-line form; Apply sets the parsed value on a TrainOptions.</summary>
    private abstract record Binding(TrainOption Spec, Option Cli)
    {
        public abstract TrainOptions Apply(ParseResult parse, TrainOptions options);
    }

    private sealed record Binding<T, TCli>(TrainOption<T> Typed, Option<TCli> TypedCli, Func<TCli, T> Convert) : Binding(Typed, TypedCli)
    {
        public override TrainOptions Apply(ParseResult parse, TrainOptions options) => Typed.With(options, Convert(parse.GetValue(TypedCli)!));
    }

    /// <summary>The command-line option of a training option: a mode and a layer list are given as text; an option that
    /// may be unset, and a flag, show no default in --help.</summary>
    private static Binding Bind(TrainOption spec) => spec switch
    {
        TrainOption<MixMode> m => new Binding<MixMode, string>(m, new(m.Name) { Description = m.Description, DefaultValueFactory = _ => TrainOptions.ModeName(m.Default) }, ParseMode),
        TrainOption<int[]?> l => new Binding<int[]?, string?>(l, new(l.Name) { Description = l.Description }, ParseLayers),
        TrainOption<int?> n => Same(n, new(n.Name) { Description = n.Description }),
        TrainOption<bool> f => Same(f, new(f.Name) { Description = f.Description }),
        TrainOption<int> i => Same(i, new(i.Name) { Description = i.Description, DefaultValueFactory = _ => i.Default }),
        TrainOption<float> x => Same(x, new(x.Name) { Description = x.Description, DefaultValueFactory = _ => x.Default }),
        TrainOption<string> s => Same(s, new(s.Name) { Description = s.Description, DefaultValueFactory = _ => s.Default }),
        _ => throw new NotSupportedException($"{spec.Name}: no command-line form for its type"),
    };

    private static Binding Same<T>(TrainOption<T> spec, Option<T> cli) => new Binding<T, T>(spec, cli, v => v);
}
