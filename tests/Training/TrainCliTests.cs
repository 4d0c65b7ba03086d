using System.Text;
using System.Text.Json.Nodes;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Training;

/// <summary>
/// `mixup-bert train` end to end, as a user runs it: a loopback mirror of the Hub serving
/// ../shared/hf and a tiny random model, HF_ENDPOINT pointing at it, then offline from the cache,
/// then with the server gone and an empty cache; and every kind of bad input.
/// </summary>
public class TrainCliTests
{
    private static readonly string[] Small = { "--train-size", "48", "--epochs", "1", "--batch-size", "16", "--max-length", "32", "--threads", "2", "--backend", "cpu" };

    private static Dictionary<string, string?> Env(string endpoint, string cache, bool offline = false) => new()
    {
        ["HF_ENDPOINT"] = endpoint, ["HF_HUB_CACHE"] = cache, ["HF_HUB_OFFLINE"] = offline ? "1" : null,
    };

    /// <summary>A folder to run the tool in, holding a tiny model at <paramref name="model"/>/resolve/main and
    /// rotten_tomatoes' parquet files in ds/, for commands that name them relative to it.</summary>
    private static string WorkFolder(string model)
    {
        string work = TempDir();
        Cli.TinyModelRepo(work, model);
        string rotten = Path.Combine(SharedDir, "hf", "datasets", "cornell-movie-review-data", "rotten_tomatoes", "resolve", "main");
        Directory.CreateDirectory(Path.Combine(work, "ds"));
        foreach (var f in Directory.GetFiles(rotten, "*.parquet")) File.Copy(f, Path.Combine(work, "ds", Path.GetFileName(f)));
        return work;
    }

    [Fact]
    public void TrainsFromTheHubThenOfflineFromTheCacheThenFailsClearlyWithNeither()
    {
        var repoRoot = TempDir();
        Cli.TinyModelRepo(repoRoot);
        var cache = TempDir();
        string outOnline = Path.Combine(TempDir(), "run"), outOffline = Path.Combine(TempDir(), "run"), outNone = Path.Combine(TempDir(), "run");
        using (var server = new MirrorServer(repoRoot, Path.Combine(SharedDir, "hf")))
        {
            var r = Cli.Run(Env(server.Endpoint, cache), ["train", "--model", "tiny-org/tiny-bert", "--dataset", "rotten_tomatoes", "--mode", "mixup", "--output", outOnline, .. Small]);
            Assert.True(r.ExitCode == 0, r.All);
            foreach (var f in new[] { "config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json", "args.json", "metrics.jsonl", "summary.json" })
                Assert.True(File.Exists(Path.Combine(outOnline, f)), $"{f} missing; {r.All}");
            var config = JsonNode.Parse(File.ReadAllText(Path.Combine(outOnline, "config.json")))!;
            Assert.Equal("BertForSequenceClassification", config["architectures"]![0]!.GetValue<string>());
            Assert.Equal(2, config["num_labels"]!.GetValue<int>());
            var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(outOnline, "summary.json")))!;
            Assert.Equal(1066, summary["test"]!["count"]!.GetValue<int>());
            var records = File.ReadAllLines(Path.Combine(outOnline, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
            Assert.Contains(records, x => x["eval_accuracy"] != null && x["epoch"]!.GetValue<int>() == 1);
            Assert.Contains(records, x => x["test_accuracy"] != null);
            Assert.True(Directory.Exists(Path.Combine(cache, "models--tiny-org--tiny-bert", "snapshots")));
            Assert.True(Directory.Exists(Path.Combine(cache, "datasets--cornell-movie-review-data--rotten_tomatoes", "snapshots")));

            // the checkpoint serves eval (defaults from its args.json) and predict
            var eval = Cli.Run(Env(server.Endpoint, cache), "eval", "--checkpoint", outOnline, "--split", "test", "--backend", "cpu");
            Assert.True(eval.ExitCode == 0, eval.All);
            Assert.Contains("test (1066 examples): loss", eval.Stdout);
            var predict = Cli.Run(Env(server.Endpoint, cache), "predict", "--checkpoint", outOnline, "--backend", "cpu", "a fine film", "a dull film");
            Assert.True(predict.ExitCode == 0, predict.All);
            var lines = predict.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();
            Assert.Equal(2, lines.Count);
            Assert.Equal("a fine film", lines[0]["text"]!.GetValue<string>());
            Assert.Contains(lines[0]["label"]!.GetValue<string>(), new[] { "0", "1" });
            double total = lines[0]["probabilities"]!.AsObject().Sum(kv => kv.Value!.GetValue<double>());
            Assert.InRange(total, 0.999, 1.001);

            int requests = server.Requests.Count;
            var off = Cli.Run(Env(server.Endpoint, cache, offline: true), ["train", "--model", "tiny-org/tiny-bert", "--dataset", "rotten_tomatoes", "--output", outOffline, .. Small]);
            Assert.True(off.ExitCode == 0, off.All);
            Assert.Equal(requests, server.Requests.Count); // offline: not one request
            // same seed, same thread count, same data from the cache: the same metrics
            Assert.Equal(File.ReadAllText(Path.Combine(outOnline, "metrics.jsonl")), File.ReadAllText(Path.Combine(outOffline, "metrics.jsonl")));
        }
        var none = Cli.Run(Env("http://127.0.0.1:9", TempDir()), ["train", "--model", "tiny-org/tiny-bert", "--dataset", "rotten_tomatoes", "--output", outNone, .. Small]);
        Assert.Equal(2, none.ExitCode);
        Assert.Contains("cannot reach the Hugging Face Hub", none.Stderr);
        Assert.Contains("HF_ENDPOINT", none.Stderr);
        Assert.Equal(new[] { ".lock", "train.log" }, Directory.GetFiles(outNone).Select(Path.GetFileName).Order()); // nothing but the log (and the lock file)
    }

    /// <summary>A local dataset folder written by the test (CSV with string labels).</summary>
    private static string CsvDataset(string train, string? validation = null)
    {
        var dir = TempDir();
        File.WriteAllText(Path.Combine(dir, "train.csv"), train);
        if (validation != null) File.WriteAllText(Path.Combine(dir, "validation.csv"), validation);
        return dir;
    }

    private static string GoodRows(int n) => string.Concat(Enumerable.Range(0, n).Select(i => $"\"a {(i % 2 == 0 ? "good" : "bad")} film, number {i}\",{(i % 2 == 0 ? "pos" : "neg")}\n"));

    public static TheoryData<string, string, string> BadInputs => new()
    {
        // name, dataset or model problem, expected words
        { "unknown dataset id", "dataset:no-org/no-data", "dataset 'no-org/no-data' was not found" },
        { "unknown model id", "model:no-org/no-model", "model 'no-org/no-model' was not found" },
        { "missing text column", "csv:sentence,label\n" + "x,pos\ny,neg\n", "no text column 'text' (columns: sentence, label" },
        { "missing label column", "csv:text,polarity\n" + "x,pos\ny,neg\n", "no label column 'label' (columns: text, polarity" },
        { "label outside num_labels", "csv-val:text,label\n" + GoodRows(20) + "|text,label\nfine film,neutral\n", "label 'neutral' is not one of the labels [neg, pos]" },
        { "empty split", "csv-val:text,label\n" + GoodRows(20) + "|text,label\n", "the validation split is empty" },
        { "empty text", "csv:text,label\n" + GoodRows(4) + "\"   \",pos\n", "row 4: empty text" },
        { "non-UTF-8 file", "latin1:text,label\ncaf\u00e9 cr\u00e8me,pos\nbad,neg\n", "not valid UTF-8" },
        { "model folder without weights", "noweights:", "no model.safetensors in the model folder" },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void BadInputGetsAClearMessageAndLeavesOnlyALog(string name, string setup, string expected)
    {
        var repoRoot = TempDir();
        var modelDir = Cli.TinyModelRepo(repoRoot);
        string model = modelDir, dataset = Path.Combine(SharedDir, "hf", "datasets", "cornell-movie-review-data", "rotten_tomatoes", "resolve", "main");
        var (kind, body) = (setup[..setup.IndexOf(':')], setup[(setup.IndexOf(':') + 1)..]);
        switch (kind)
        {
            case "dataset": dataset = body; break;
            case "model": model = body; break;
            case "csv": dataset = CsvDataset(body); break;
            case "csv-val": { var parts = body.Split('|'); dataset = CsvDataset(parts[0], parts[1]); break; }
            case "latin1":
                dataset = TempDir();
                File.WriteAllBytes(Path.Combine(dataset, "train.csv"), Encoding.Latin1.GetBytes(body));
                break;
            case "noweights":
                File.Delete(Path.Combine(modelDir, "model.safetensors"));
                break;
        }
        using var server = new MirrorServer(repoRoot, Path.Combine(SharedDir, "hf"));
        string output = Path.Combine(TempDir(), "run");
        var r = Cli.Run(Env(server.Endpoint, TempDir()), ["train", "--model", model, "--dataset", dataset, "--output", output, .. Small]);
        Assert.True(r.ExitCode == 2, $"{name}: exit {r.ExitCode}; {r.All}");
        Assert.Contains(expected, r.Stderr);
        Assert.Equal(new[] { ".lock", "train.log" }, Directory.GetFiles(output).Select(Path.GetFileName).Order()); // the log, and the (empty) lock file
        Assert.Empty(Directory.GetDirectories(output));
    }

    /// <summary>--output naming a folder of files that no run wrote, such as the --model folder itself: refused
    /// before anything is written there (training would overwrite the model).</summary>
    [Fact]
    public void TrainingIntoAModelFolderIsRefusedAndLeavesItAlone()
    {
        var modelDir = Cli.TinyModelRepo(TempDir());
        string dataset = Path.Combine(SharedDir, "hf", "datasets", "cornell-movie-review-data", "rotten_tomatoes", "resolve", "main");
        var before = Directory.GetFiles(modelDir).ToDictionary(f => f, File.ReadAllBytes);
        var r = Cli.Run(new Dictionary<string, string?>(), ["train", "--model", modelDir, "--dataset", dataset, "--output", modelDir, .. Small]);
        Assert.True(r.ExitCode == 2, r.All);
        Assert.Contains($"{modelDir} holds config.json, model.safetensors, vocab.txt", r.Stderr);
        Assert.Contains("no run of mixup-bert (no args.json)", r.Stderr);
        Assert.Equal(before.Keys.Order(), Directory.GetFiles(modelDir).Order()); // no .lock, no train.log
        Assert.All(before, f => Assert.Equal(f.Value, File.ReadAllBytes(f.Key)));
    }

    /// <summary>A local dataset and model given relative to the working directory are recorded as given, with their
    /// absolute paths beside: eval (and --resume) find them from another directory (before, eval looked the relative
    /// name up on the Hub), and a resubmitted job that stages its data anew elsewhere and repeats the command is
    /// the same run, as is a path spelt otherwise ("ds/").</summary>
    [Fact]
    public void LocalPathsGivenRelativeAreFoundFromAnywhere()
    {
        string work = WorkFolder("models/tiny");
        string output = Path.Combine(TempDir(), "run");
        var env = new Dictionary<string, string?> { ["HF_ENDPOINT"] = "http://127.0.0.1:9" }; // nothing there: a Hub lookup fails
        string[] train = ["train", "--model", "models/tiny/resolve/main", "--dataset", "ds", "--output", output, .. Small];
        var r = Cli.RunIn(work, env, train);
        Assert.True(r.ExitCode == 0, r.All);
        var args = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "args.json")))!;
        Assert.Equal(("ds", Path.Combine(work, "ds")), (args["dataset"]!.GetValue<string>(), args["dataset_path"]!.GetValue<string>()));
        Assert.Equal(Path.Combine(work, "models", "tiny", "resolve", "main"), args["model_path"]!.GetValue<string>());
        var e = Cli.RunIn(TempDir(), env, ["eval", "--checkpoint", output, "--backend", "cpu"]);
        Assert.True(e.ExitCode == 0, e.All);
        // the job resubmitted from another directory holding the same relative names, and a path spelt otherwise:
        // the same run (finished here, so nothing to resume), not a run given other inputs
        string elsewhere = TempDir();
        Directory.Move(work, Path.Combine(elsewhere, "w"));
        foreach (var resume in new[] { train, [.. train[..4], "ds/", .. train[5..]] })
        {
            var again = Cli.RunIn(Path.Combine(elsewhere, "w"), env, [.. resume, "--resume"]);
            Assert.True(again.ExitCode == 0, again.All);
            Assert.Contains("nothing to resume", again.Stdout);
        }
    }

    /// <summary>--resume of a folder whose args.json is damaged: exit 2 naming the file and the key, in train.log too.</summary>
    [Fact]
    public void ResumingADamagedArgsJsonNamesItInTheRunsLog()
    {
        string folder = TempDir();
        File.WriteAllText(Path.Combine(folder, "args.json"), """{"epochs": "x"}""");
        var r = Cli.Run(new Dictionary<string, string?> { ["HF_HUB_OFFLINE"] = "1" }, "train", "--output", folder, "--resume", "--lr", "1e-3");
        Assert.True(r.ExitCode == 2, r.All);
        Assert.Contains("args.json: 'epochs' should be", r.Stderr);
        Assert.Contains("args.json: 'epochs' should be", File.ReadAllText(Path.Combine(folder, "train.log")));
    }

    /// <summary>A local folder named like a Hub alias (rotten_tomatoes) is not the Hub dataset: --resume given the Hub id
    /// for a run trained on the folder is refused as another input.</summary>
    [Fact]
    public void ALocalFolderNamedLikeAnAliasIsNotTheHubDataset()
    {
        string work = WorkFolder("m");
        Directory.Move(Path.Combine(work, "ds"), Path.Combine(work, "rotten_tomatoes"));
        string output = Path.Combine(TempDir(), "run");
        var env = new Dictionary<string, string?> { ["HF_ENDPOINT"] = "http://127.0.0.1:9" };
        string[] train = ["train", "--model", "m/resolve/main", "--dataset", "rotten_tomatoes", "--output", output, .. Small];
        Assert.Equal(0, Cli.RunIn(work, env, train).ExitCode);
        var hub = Cli.RunIn(work, env, [.. train[..4], "cornell-movie-review-data/rotten_tomatoes", .. train[5..], "--resume"]);
        Assert.True(hub.ExitCode == 2, hub.All);
        Assert.Contains("--dataset cornell-movie-review-data/rotten_tomatoes (the run's: rotten_tomatoes)", hub.Stderr);
    }

    /// <summary>predict truncates as the run did (its args.json's --max-length, as eval does; it was always 128), and
    /// gives one output line for each line of standard input, a blank one included (they were dropped, so the
    /// output no longer lined up with the input).</summary>
    [Fact]
    public void PredictTruncatesAsTheRunDidAndKeepsEveryInputLine()
    {
        // all-MiniLM-L6-v2 with a new head, as a run trained with --max-length 8 left it (a tiny random model's
        // probabilities do not move in their sixth digit with the context)
        string output = Path.Combine(TempDir(), "run");
        var env = new Dictionary<string, string?>();
        Assert.Equal(0, Cli.Run(env, "convert", "--model", MiniLmDir, "--output", output, "--labels", "neg,pos").ExitCode);
        new Model.Training.RunFolder(output).WriteArgs(new Model.Training.RunArgs(new Model.Training.RunInputs(), MiniLmDir,
            new Dictionary<string, IReadOnlyList<string>>(), ["neg", "pos"], new Model.Training.TrainOptions { MaxLength = 8 }, 10, "cpu"));
        string text = "a wonderful film with great acting but then it became a dull boring terrible awful mess";
        string Predict(params string[] extra) => Cli.Run(env, ["predict", "--checkpoint", output, "--backend", "cpu", .. extra, text]).Stdout;
        Assert.Equal(Predict("--max-length", "8"), Predict());
        Assert.NotEqual(Predict("--max-length", "128"), Predict());
        var lines = Cli.RunWithInput(null, env, "good\n\n   \nbad\n", "predict", "--checkpoint", output, "--backend", "cpu");
        Assert.True(lines.ExitCode == 0, lines.All);
        Assert.Equal(["good", "", "   ", "bad"], lines.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!["text"]!.GetValue<string>()));
    }

    /// <summary>SIGTERM (a scheduler's time limit, scancel, docker stop) stops a run as Ctrl-C does: it
    /// saves its checkpoint and exits 143, and --resume finishes it as an uninterrupted run ends.</summary>
    [Fact]
    public void SigtermSavesACheckpointAndTheRunResumes()
    {
        // the model and dataset given relative to the directory the run starts in
        string work = WorkFolder("m");
        string[] longer = [.. Small];
        longer[Array.IndexOf(longer, "--epochs") + 1] = "30"; // long enough for the signal to land in the middle
        string[] run = ["train", "--model", "m/resolve/main", "--dataset", "ds", "--logging-steps", "1", .. longer];
        string full = Path.Combine(TempDir(), "run"), stopped = Path.Combine(TempDir(), "run");
        var env = new Dictionary<string, string?> { ["HF_ENDPOINT"] = "http://127.0.0.1:9" };
        var r = Cli.RunSignalled(work, env, () => File.Exists(Path.Combine(stopped, "metrics.jsonl")) && File.ReadAllText(Path.Combine(stopped, "metrics.jsonl")).Contains("\"loss\""),
            Cli.Sigterm, [.. run, "--output", stopped]);
        Assert.True(r.ExitCode == 143, r.All);
        Assert.Contains("SIGTERM: stopping after this step", r.Stderr);
        Assert.True(File.Exists(Path.Combine(stopped, "state", "trainer_state.json")), r.All);
        string state = File.ReadAllText(Path.Combine(stopped, "state", "trainer_state.json"));
        // --resume continues as the run started: an option given otherwise is refused, not silently ignored
        var other = Cli.RunIn(work, env, [.. run, "--output", stopped, "--resume", "--lr", "1e-3", "--mode", "tmix"]);
        Assert.True(other.ExitCode == 2, other.All);
        Assert.True(other.Stderr.Contains("these were given otherwise: --mode tmix (the run's: mixup), --lr 0.001 (the run's: 5E-05)"), other.Stderr);
        Assert.Equal(state, File.ReadAllText(Path.Combine(stopped, "state", "trainer_state.json")));
        // resumed from another directory with the output alone: the recorded inputs are found where they were
        var resumed = Cli.RunIn(TempDir(), env, "train", "--output", stopped, "--resume", "--threads", "2");
        Assert.True(resumed.ExitCode == 0, resumed.All);
        Assert.True(Cli.RunIn(work, env, [.. run, "--output", full]).ExitCode == 0);
        Assert.Equal(File.ReadAllBytes(Path.Combine(full, "model.safetensors")), File.ReadAllBytes(Path.Combine(stopped, "model.safetensors")));
    }

    [Fact]
    public void TrainsWithSsMixAndRecordsItsSpan()
    {
        var repoRoot = TempDir();
        var modelDir = Cli.TinyModelRepo(repoRoot);
        string dataset = Path.Combine(SharedDir, "hf", "datasets", "cornell-movie-review-data", "rotten_tomatoes", "resolve", "main");
        using var server = new MirrorServer(repoRoot, Path.Combine(SharedDir, "hf"));
        string output = Path.Combine(TempDir(), "run");
        var r = Cli.Run(Env(server.Endpoint, TempDir()), ["train", "--model", modelDir, "--dataset", dataset, "--mode", "ssmix", "--ssmix-span", "0.2", "--logging-steps", "1", "--output", output, .. Small]);
        Assert.True(r.ExitCode == 0, r.All);
        var args = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "args.json")))!;
        Assert.Equal("ssmix", args["mode"]!.GetValue<string>());
        Assert.Equal(0.2f, args["ssmix_span"]!.GetValue<float>());
        var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "summary.json")))!;
        Assert.Equal("ssmix", summary["mode"]!.GetValue<string>());
        var losses = File.ReadAllLines(Path.Combine(output, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!).Where(x => x["loss"] != null).ToList();
        Assert.NotEmpty(losses);
        Assert.All(losses, x => Assert.True(double.IsFinite(x["loss"]!.GetValue<double>())));
    }

    [Fact]
    public void ADatasetIsReadAtItsOwnRevisionWhileTheModelStaysOnMain()
    {
        // the Hub's parquet conversion lives on the dataset's refs/convert/parquet, a revision models do not have
        var repoRoot = TempDir();
        Cli.TinyModelRepo(repoRoot);
        var converted = Path.Combine(repoRoot, "datasets", "org", "scripted", "resolve", "refs", "convert", "parquet", "default");
        var rotten = Path.Combine(SharedDir, "hf", "datasets", "cornell-movie-review-data", "rotten_tomatoes", "resolve", "main");
        foreach (var split in new[] { "train", "validation", "test" })
        {
            Directory.CreateDirectory(Path.Combine(converted, split));
            File.Copy(Path.Combine(rotten, $"{split}.parquet"), Path.Combine(converted, split, "0000.parquet"));
        }
        using var server = new MirrorServer(repoRoot, Path.Combine(SharedDir, "hf"));
        string output = Path.Combine(TempDir(), "run");
        string[] Train(params string[] revision) => ["train", "--model", "tiny-org/tiny-bert", "--dataset", "org/scripted", .. revision, "--output", output, .. Small];
        var both = Cli.Run(Env(server.Endpoint, TempDir()), Train("--revision", "refs/convert/parquet"));
        Assert.True(both.ExitCode == 2, both.All);   // the model has no such revision
        var r = Cli.Run(Env(server.Endpoint, TempDir()), Train("--dataset-revision", "refs/convert/parquet"));
        Assert.True(r.ExitCode == 0, r.All);
        var args = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "args.json")))!;
        Assert.Equal("main", args["revision"]!.GetValue<string>());
        Assert.Equal("refs/convert/parquet", args["dataset_revision"]!.GetValue<string>());
        // eval reads the run's dataset at the run's dataset revision
        var eval = Cli.Run(Env(server.Endpoint, TempDir()), "eval", "--checkpoint", output, "--backend", "cpu", "--threads", "2");
        Assert.True(eval.ExitCode == 0, eval.All);
        Assert.Contains("test (1066 examples)", eval.Stdout);
        var elsewhere = Cli.Run(Env(server.Endpoint, TempDir()), "eval", "--checkpoint", output, "--backend", "cpu", "--dataset-revision", "main");
        Assert.True(elsewhere.ExitCode == 2, elsewhere.All);   // main has no data files: eval read the revision it was given
    }

    [Fact]
    public void TrainsEvaluatesAndPredictsOnSentencePairs()
    {
        // an MRPC-like local dataset: sentence1, sentence2, label; the run records its pair column, and eval and
        // predict take it from there
        var modelDir = Cli.TinyModelRepo(TempDir());
        var data = TempDir();
        string Rows(int from, int n) => "sentence1,sentence2,label\n" + string.Concat(Enumerable.Range(from, n).Select(i =>
            $"a film number {i},{(i % 2 == 0 ? $"a film number {i}" : "something else entirely")},{1 - i % 2}\n"));
        File.WriteAllText(Path.Combine(data, "train.csv"), Rows(0, 40));
        File.WriteAllText(Path.Combine(data, "test.csv"), Rows(40, 10));
        string output = Path.Combine(TempDir(), "run");
        var noHub = new Dictionary<string, string?> { ["HF_HUB_OFFLINE"] = "1", ["HF_HOME"] = TempDir() };
        var r = Cli.Run(noHub, ["train", "--model", modelDir, "--dataset", data, "--text-column", "sentence1", "--text-pair-column", "sentence2",
            "--output", output, "--epochs", "1", "--batch-size", "8", "--max-length", "16", "--threads", "2", "--backend", "cpu"]);
        Assert.True(r.ExitCode == 0, r.All);
        Assert.DoesNotContain("half of each example", r.All);
        var args = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "args.json")))!;
        Assert.Equal("sentence2", args["text_pair_column"]!.GetValue<string>());

        string metrics = Path.Combine(TempDir(), "eval.json");
        var eval = Cli.Run(noHub, "eval", "--checkpoint", output, "--backend", "cpu", "--json", metrics);
        Assert.True(eval.ExitCode == 0, eval.All);
        Assert.Contains("test (10 examples)", eval.Stdout);
        // the pairs, not their first halves: the loss the run itself measured on the test split
        double trainTestLoss = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "summary.json")))!["test"]!["loss"]!.GetValue<double>();
        // the same forward over the same batches (eval's batch size is the run's): equal to the digit; the tiny
        // model is near chance, so reading only the first halves moves the loss by about 2e-6
        Assert.Equal(trainTestLoss, JsonNode.Parse(File.ReadAllText(metrics))!["loss"]!.GetValue<double>(), 10);

        // predict: each text is a pair with a tab between; the second half reaches the model
        var predict = Cli.Run(noHub, "predict", "--checkpoint", output, "--backend", "cpu", "a film number 3\ta film number 3", "a film number 3\tsomething else");
        Assert.True(predict.ExitCode == 0, predict.All);
        var lines = predict.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(["a film number 3", "a film number 3"], lines.Select(l => l["text"]!.GetValue<string>()));
        Assert.Equal(["a film number 3", "something else"], lines.Select(l => l["text_pair"]!.GetValue<string>()));
        Assert.NotEqual(lines[0]["probabilities"]!.ToJsonString(), lines[1]["probabilities"]!.ToJsonString());
        var single = Cli.Run(noHub, "predict", "--checkpoint", output, "--backend", "cpu", "--pairs", "false", "a film number 3\ta film number 3");
        Assert.True(single.ExitCode == 0, single.All);
        Assert.Null(JsonNode.Parse(single.Stdout.Trim())!["text_pair"]);
        // a blank line of standard input is the empty pair: one output line for each input line
        var piped = Cli.RunWithInput(null, noHub, "a film\tnumber 3\n\nsomething\telse\n", "predict", "--checkpoint", output, "--backend", "cpu");
        Assert.True(piped.ExitCode == 0, piped.All);
        Assert.Equal(["number 3", "", "else"], piped.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!["text_pair"]!.GetValue<string>()));
        var noTab = Cli.Run(noHub, "predict", "--checkpoint", output, "--backend", "cpu", "a pair\twith a tab", "no tab here");
        Assert.True(noTab.ExitCode == 2, noTab.All);
        Assert.Contains("text argument 2", noTab.Stderr);
        Assert.Contains("tab", noTab.Stderr);

        // predict needs only the pair column of args.json: another key it cannot read is a warning, not a failure
        var argsFile = Path.Combine(output, "args.json");
        File.WriteAllText(argsFile, File.ReadAllText(argsFile).Replace("\"epochs\": 1,", "\"epochs\": \"one\","));
        var unreadable = Cli.Run(noHub, "predict", "--checkpoint", output, "--backend", "cpu", "a film number 3");
        Assert.True(unreadable.ExitCode == 0, unreadable.All);
        Assert.Contains("warning:", unreadable.Stderr);
        Assert.Contains("--pairs true", unreadable.Stderr);

        // a pair needs [CLS] and two [SEP]: --max-length 2 is refused before anything is written
        var tooShort = Cli.Run(noHub, ["train", "--model", modelDir, "--dataset", data, "--text-column", "sentence1", "--text-pair-column", "sentence2",
            "--output", Path.Combine(TempDir(), "short"), "--max-length", "2", "--backend", "cpu"]);
        Assert.True(tooShort.ExitCode == 2, tooShort.All);
        Assert.Contains("--max-length 2 leaves no room for a sentence pair", tooShort.Stderr);
    }

    [Fact]
    public void BenchTimesEveryModeInterleavedAndReportsTheShareOfPeak()
    {
        var modelDir = Cli.TinyModelRepo(TempDir());
        string json = Path.Combine(TempDir(), "bench.json");
        var r = Cli.Run(new Dictionary<string, string?>(), "bench", "--model", modelDir, "--random-init", "--backend", "cpu", "--batch-size", "4", "--seq-len", "8",
            "--mode", "baseline,mixup,tmix,senmix,ssmix", "--steps", "3", "--warmup", "1", "--json", json);
        Assert.True(r.ExitCode == 0, r.All);
        Assert.Contains("; random weights (the speed does not depend on them)", r.Stdout);
        foreach (var mode in new[] { "mixup", "tmix", "senmix", "ssmix" }) Assert.Contains($"overhead of {mode} over baseline", r.Stdout);
        Assert.Contains("FMA peak of this machine", r.Stdout);
        var doc = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(json))!;
        Assert.True((double)doc["cpu_fma_peak_gflops"]! > 0);
        var results = doc["results"]!.AsArray();
        Assert.Contains("pipelined (the next step queued before a loss is read back", r.Stdout);
        Assert.Equal(new[] { "train baseline", "train mixup", "train tmix", "train senmix", "train ssmix", "train baseline pipelined", "inference" },
            results.Select(x => (string)x!["case"]!));
        foreach (var x in results)
        {
            Assert.Equal(3, (int)x!["steps"]!);
            Assert.True((double)x["median_s"]! > 0 && (double)x["min_s"]! <= (double)x["median_s"]! && (double)x["median_s"]! <= (double)x["max_s"]!);
            Assert.True((double)x["gflops"]! > 0);
        }
    }
    /// <summary>A Hub dataset with configuration folders, a sharded train split and a test split whose labels are
    /// withheld (-1), as GLUE is laid out: train names the configuration, reads both shards, leaves the test out.</summary>
    [Fact]
    public void TrainsOnOneConfigurationOfAShardedHubDataset()
    {
        var repoRoot = TempDir();
        Cli.TinyModelRepo(repoRoot);
        var data = Path.Combine(repoRoot, "datasets", "org", "glue-like", "resolve", "main");
        string Rows(int from, int n, bool labelled) => "sentence,label,idx\n" + string.Concat(Enumerable.Range(from, n).Select(i =>
            $"\"a {(i % 2 == 0 ? "good" : "bad")} film number {i}\",{(labelled ? i % 2 : -1)},{i}\n"));
        foreach (var (file, text) in new[] { ("sst2/train-00000-of-00002.csv", Rows(0, 20, true)), ("sst2/train-00001-of-00002.csv", Rows(20, 20, true)),
                     ("sst2/validation-00000-of-00001.csv", Rows(40, 10, true)), ("sst2/test-00000-of-00001.csv", Rows(50, 10, false)),
                     ("cola/train-00000-of-00001.csv", Rows(0, 4, true)) })
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(data, file))!);
            File.WriteAllText(Path.Combine(data, file), text);
        }
        using var server = new MirrorServer(repoRoot, Path.Combine(SharedDir, "hf"));
        string output = Path.Combine(TempDir(), "run");
        var r = Cli.Run(Env(server.Endpoint, TempDir()), ["train", "--model", "tiny-org/tiny-bert", "--dataset", "org/glue-like/sst2", "--text-column", "sentence",
            "--output", output, "--epochs", "1", "--batch-size", "8", "--max-length", "24", "--threads", "2", "--backend", "cpu"]);
        Assert.True(r.ExitCode == 0, r.All);
        Assert.Contains("train-00000-of-00002.csv and 1 more", r.Stdout);
        Assert.Contains("train 40, validation 10, test none", r.Stdout);
        Assert.Contains("is -1 (labels withheld", r.Stdout);
        var args = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "args.json")))!;
        Assert.Equal(2, args["dataset_files"]!["train"]!.AsArray().Count);   // a split in shards is recorded as a list
        var ambiguous = Cli.Run(Env(server.Endpoint, TempDir()), ["train", "--model", "tiny-org/tiny-bert", "--dataset", "org/glue-like", "--output", Path.Combine(TempDir(), "run"), "--backend", "cpu"]);
        Assert.True(ambiguous.ExitCode == 2, ambiguous.All);
        Assert.Contains("several configurations (cola, sst2): choose one as --dataset org/glue-like/cola", ambiguous.Stderr);
    }
}
