using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using MixupBert.Model.Bert;
using MixupBert.Model.Data;
using MixupBert.Model.Weights;

namespace MixupBert.Model.Training;

/// <summary>A run folder that cannot be used as asked (locked, not a folder, not writable): exit 2.</summary>
public sealed class RunFolderException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>What a committed checkpoint gives back to the trainer.</summary>
public sealed record SavedState(float[] Parameters, float[] M, float[] V, float[]? Best, TrainerState Trainer);

/// <summary>
/// The files of one run's output folder. The best model sits at the top as a transformers-loadable
/// checkpoint (config.json, model.safetensors, vocab.txt, tokenizer_config.json); state/ holds what
/// --resume needs.
///
/// A checkpoint is committed as one unit: its tensors go into a new folder state/step-N/ (weights
/// and Adam moments; the best weights are the model.safetensors of the step folder of the best
/// epoch), then state/trainer_state.json, the manifest, is written under a temporary name and renamed
/// over the old one. It holds the trainer's counters, the length of metrics.jsonl at that moment and
/// the SHA-256 of every file it refers to. Until that rename the old manifest and the files it names
/// are untouched, so a kill at any instant leaves the previous or the next checkpoint, never a mix;
/// files no manifest names are removed afterwards (and when a run is resumed).
///
/// The folder's JSON files are typed records (<see cref="RunArgs"/>, <see cref="TrainerState"/>,
/// <see cref="RunSummary"/>, the lines of metrics.jsonl), read and written only here.
/// </summary>
public sealed class RunFolder(string path)
{
    public string Path { get; } = System.IO.Path.GetFullPath(path);
    public string MetricsFile => Combine("metrics.jsonl");
    public string SummaryFile => Combine("summary.json");
    public string ArgsFile => Combine("args.json");
    public string StateDir => Combine("state");
    /// <summary>The manifest of the committed checkpoint.</summary>
    public string StateFile => System.IO.Path.Combine(StateDir, "trainer_state.json");
    public string LockFile => Combine(".lock");

    private static readonly string[] TokenizerFiles = TextEncoder.Files;

    private string Combine(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>A run is there when it has args.json (written once its inputs were all checked).</summary>
    public bool HoldsRun => File.Exists(ArgsFile);

    /// <summary>A checkpoint was committed: there is work to resume.</summary>
    public bool HasState => File.Exists(StateFile);

    public bool Finished => File.Exists(SummaryFile);

    /// <summary>
    /// Takes the folder for this process: an OS lock (flock) on .lock, held until the returned handle is
    /// disposed or the process dies (kill -9 included, so no stale lock is left behind).
    /// </summary>
    public IDisposable Lock()
    {
        if (File.Exists(Path)) throw new RunFolderException($"--output {Path} is a file, not a folder");
        try
        {
            Directory.CreateDirectory(Path);
            return new FileStream(LockFile, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e) when (File.Exists(LockFile) && e is not DirectoryNotFoundException)
        {
            throw new RunFolderException($"{Path} is in use by another mixup-bert process (it holds {LockFile}); wait for it or choose another --output", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RunFolderException($"cannot write the run folder {Path}: {e.Message}", e);
        }
    }

    /// <summary>The files of a folder that holds no run (no args.json) which a run would write over: a
    /// model's (config.json, model.safetensors, the tokenizer's), as when --output is the --model folder,
    /// or a run's records. Empty for a new folder, or one with only files a run leaves alone.</summary>
    public IReadOnlyList<string> FilesARunWouldOverwrite()
    {
        if (!Directory.Exists(Path) || HoldsRun) return [];
        return new[] { "config.json", "model.safetensors", "metrics.jsonl", "summary.json" }.Concat(TokenizerFiles)
            .Where(f => File.Exists(Combine(f))).ToList();
    }

    /// <summary>Empties a folder that holds a run with no committed checkpoint, so that it starts over
    /// (train.log, the lock and files that are not the run's are kept).</summary>
    public void ClearForRestart()
    {
        // args.json last: a kill in between leaves a folder that still holds a run (FilesARunWouldOverwrite)
        foreach (var f in new[] { "metrics.jsonl", "summary.json", "config.json", "model.safetensors" }.Concat(TokenizerFiles).Append("args.json"))
            File.Delete(Combine(f));
        if (Directory.Exists(StateDir)) Directory.Delete(StateDir, recursive: true);
        RemoveTemporaries();
    }

    /// <summary>Removes the .tmp files an interrupted write leaves at the top of the folder.</summary>
    public void RemoveTemporaries()
    {
        if (!Directory.Exists(Path)) return;
        foreach (var f in Directory.EnumerateFiles(Path, "*.tmp")) File.Delete(f);
    }

    public static void WriteAtomic(string file, string text)
    {
        string tmp = file + ".tmp";
        try
        {
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                fs.Write(System.Text.Encoding.UTF8.GetBytes(text));
                fs.Flush(flushToDisk: true); // on disk before the rename makes it visible
            }
            FaultInjection.WritePoint($"{System.IO.Path.GetFileName(file)} written, not renamed");
            File.Move(tmp, file, overwrite: true);
        }
        catch
        {
            File.Delete(tmp);
            throw;
        }
    }

    public static string Json(JsonNode node) => node.ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    public void WriteArgs(RunArgs args)
    {
        Directory.CreateDirectory(Path);
        WriteAtomic(ArgsFile, Json(args.ToJson()));
    }

    /// <summary>args.json, or null where there is none (a model folder that no train run wrote).</summary>
    public RunArgs? ReadArgs()
    {
        if (!File.Exists(ArgsFile)) return null;
        try
        {
            var node = JsonNode.Parse(File.ReadAllText(ArgsFile)) as JsonObject ?? throw new DataFormatException($"{ArgsFile}: expected a JSON object");
            return RunArgs.FromJson(node, ArgsFile);
        }
        catch (JsonException e) { throw new DataFormatException($"{ArgsFile}: not valid JSON ({e.Message})", e); }
    }

    public void WriteSummary(RunSummary summary)
    {
        WriteAtomic(SummaryFile, RunJson.Write(summary));
        FaultInjection.WritePoint("summary.json renamed");
    }

    public RunSummary ReadSummary() => RunJson.ReadSummary(File.ReadAllText(SummaryFile), SummaryFile);

    /// <summary>The model as transformers loads it, plus the tokenizer files it was trained with.</summary>
    public void SaveModel(BertConfig config, float[] parameters, string tokenizerFolder)
    {
        BertCheckpoint.Save(Path, config, parameters);
        foreach (var f in TokenizerFiles)
        {
            string src = System.IO.Path.Combine(tokenizerFolder, f);
            if (File.Exists(src) && System.IO.Path.GetFullPath(src) != System.IO.Path.GetFullPath(Combine(f)))
            {
                File.Copy(src, Combine(f) + ".tmp", overwrite: true);
                File.Move(Combine(f) + ".tmp", Combine(f), overwrite: true);
            }
        }
    }

    /// <summary>
    /// Commits a checkpoint: parameters and Adam moments at the trainer's step; <paramref name="newBest"/>
    /// when these parameters are the new best model (they are then published at the top of the folder
    /// too); otherwise the best is <paramref name="best"/> when given (a best model that no committed
    /// checkpoint holds, because the trainer skipped the checkpoint of its epoch: saved beside these
    /// parameters and published), else what the previous manifest named (none before the first epoch).
    /// </summary>
    public void SaveState(BertConfig config, float[] parameters, float[] m, float[] v, bool newBest, TrainerState trainer, string tokenizerFolder,
        float[]? best = null)
    {
        var committed = CommittedManifest();
        string stepName = FreeStepName(trainer.GlobalStep, committed);
        string stepDir = System.IO.Path.Combine(StateDir, stepName);
        if (newBest) best = null;
        string? bestFile = newBest ? $"{stepName}/model.safetensors" : best != null ? $"{stepName}/best.safetensors" : committed?.Best;
        try
        {
            if (Directory.Exists(stepDir)) Directory.Delete(stepDir, recursive: true); // an uncommitted leftover
            BertCheckpoint.Save(stepDir, config, parameters);
            FaultInjection.WritePoint("state weights written");
            SafeTensorsWriter.Write(System.IO.Path.Combine(stepDir, "optimizer.safetensors"), new[]
            {
                ("exp_avg", new long[] { m.Length }, (ReadOnlyMemory<float>)m),
                ("exp_avg_sq", new long[] { v.Length }, (ReadOnlyMemory<float>)v),
            });
            FaultInjection.WritePoint("state optimizer written");
            if (best != null)
            {
                BertCheckpoint.SaveWeights(System.IO.Path.Combine(stepDir, "best.safetensors"), config, best);
                FaultInjection.WritePoint("state best written");
            }

            var files = new Dictionary<string, string>(); // written in insertion order
            foreach (var f in new[] { $"{stepName}/config.json", $"{stepName}/model.safetensors", $"{stepName}/optimizer.safetensors", bestFile }.OfType<string>().Distinct())
                files[f] = Sha256(System.IO.Path.Combine(StateDir, f));
            var manifest = trainer with
            {
                Parameters = $"{stepName}/model.safetensors", Optimizer = $"{stepName}/optimizer.safetensors", Best = bestFile,
                MetricsBytes = File.Exists(MetricsFile) ? new FileInfo(MetricsFile).Length : 0, Sha256 = files,
            };
            WriteAtomic(StateFile, RunJson.Write(manifest)); // the commit
            FaultInjection.WritePoint("state committed");
        }
        catch when (!HasStateNamed(stepName))
        {
            if (Directory.Exists(stepDir)) Directory.Delete(stepDir, recursive: true); // uncommitted: the previous checkpoint stands
            throw;
        }

        if (newBest || best != null)
        {
            SaveModel(config, best ?? parameters, tokenizerFolder);
            FaultInjection.WritePoint("best model published");
        }
        RemoveUnreferencedState();
        FaultInjection.WritePoint("old state removed");
    }

    /// <summary>A folder name for the new checkpoint that the committed manifest does not use.</summary>
    private static string FreeStepName(long step, TrainerState? committed)
    {
        var used = committed?.Sha256 is { } sums ? sums.Keys.Select(k => k.Split('/')[0]).ToHashSet() : new HashSet<string>();
        string name = $"step-{step:D9}";
        for (int i = 1; used.Contains(name); i++) name = $"step-{step:D9}.{i}";
        return name;
    }

    private bool HasStateNamed(string stepName) => CommittedManifest()?.Parameters == $"{stepName}/model.safetensors";

    private TrainerState? CommittedManifest() => File.Exists(StateFile) ? RunJson.ReadTrainerState(File.ReadAllText(StateFile), StateFile) : null;

    /// <summary>The committed checkpoint, every file checked against its SHA-256.</summary>
    public SavedState LoadState(BertConfig config)
    {
        var manifest = CommittedManifest() ?? throw new RunFolderException($"{Path}: nothing to resume (no state/trainer_state.json)");
        if (manifest.Sha256 is not { } sums)
            throw new RunFolderException($"{StateFile} was written by an older mixup-bert and cannot be resumed; start a new run");
        foreach (var (file, sum) in sums)
        {
            string full = System.IO.Path.Combine(StateDir, file);
            if (!File.Exists(full) || Sha256(full) != sum)
                throw new RunFolderException($"{full} is missing or does not match its SHA-256 in {StateFile}: the saved state is damaged");
        }
        var parameters = ReadWeights(config, manifest.Parameters!);
        float[]? best = manifest.Best is string b ? ReadWeights(config, b) : null;
        using var reader = new SafeTensorsReader(System.IO.Path.Combine(StateDir, manifest.Optimizer!));
        var m = new float[parameters.Length]; var v = new float[parameters.Length];
        reader.ReadFloat32("exp_avg", m);
        reader.ReadFloat32("exp_avg_sq", v);
        return new SavedState(parameters, m, v, best, manifest);
    }

    /// <summary>
    /// Brings the rest of the folder back to the committed checkpoint: metrics.jsonl cut to the records
    /// written before it, the best model republished if a kill came between commit and publishing,
    /// state files no manifest names removed.
    /// </summary>
    public void RestoreToState(BertConfig config, SavedState state, string tokenizerFolder)
    {
        long length = state.Trainer.MetricsBytes;
        long have = File.Exists(MetricsFile) ? new FileInfo(MetricsFile).Length : 0;
        if (have < length) throw new RunFolderException($"{MetricsFile} is shorter ({have} bytes) than when the state was saved ({length} bytes): it was changed; cannot resume");
        if (have > length) using (var f = new FileStream(MetricsFile, FileMode.Open, FileAccess.Write)) f.SetLength(length);
        RemoveTemporaries();
        // always: a kill may have come between the commit and the end of publishing
        if (state.Best != null) SaveModel(config, state.Best, tokenizerFolder);
        RemoveUnreferencedState();
    }

    /// <summary>Deletes what no committed manifest names: older checkpoints and uncommitted leftovers.</summary>
    private void RemoveUnreferencedState()
    {
        var manifest = CommittedManifest();
        if (manifest?.Sha256 is not { } sums) return;
        var keep = sums.Keys.Select(k => System.IO.Path.GetFullPath(System.IO.Path.Combine(StateDir, k))).ToHashSet();
        keep.Add(StateFile);
        foreach (var f in Directory.EnumerateFiles(StateDir, "*", SearchOption.AllDirectories).ToList())
            if (!keep.Contains(System.IO.Path.GetFullPath(f))) File.Delete(f);
        foreach (var d in Directory.EnumerateDirectories(StateDir).ToList())
            if (!Directory.EnumerateFileSystemEntries(d).Any()) Directory.Delete(d);
    }

    private float[] ReadWeights(BertConfig config, string relative)
    {
        using var reader = new SafeTensorsReader(System.IO.Path.Combine(StateDir, relative));
        return BertCheckpoint.LoadWeights(reader, config).Parameters;
    }

    private static string Sha256(string file)
    {
        using var s = File.OpenRead(file);
        return Convert.ToHexStringLower(SHA256.HashData(s));
    }

    public void AppendMetrics(TrainLossRecord record) => AppendMetricsLine(RunJson.Line(record));

    public void AppendMetrics(EvalRecord record) => AppendMetricsLine(RunJson.Line(record));

    private void AppendMetricsLine(string line)
    {
        Directory.CreateDirectory(Path);
        using var f = new StreamWriter(MetricsFile, append: true);
        f.WriteLine(line);
    }

    /// <summary>metrics.jsonl's records, training losses and evaluations apart, each in the order written.</summary>
    public MetricsLog ReadMetrics()
    {
        var log = new MetricsLog(new List<TrainLossRecord>(), new List<EvalRecord>());
        int n = 0;
        foreach (var line in File.ReadLines(MetricsFile))
        {
            n++;
            if (line.Length == 0) continue;
            var record = RunJson.ParseLine(line, $"{MetricsFile}, line {n}");
            if (record is TrainLossRecord loss) log.TrainLoss.Add(loss);
            else log.Evaluations.Add((EvalRecord)record);
        }
        return log;
    }
}
