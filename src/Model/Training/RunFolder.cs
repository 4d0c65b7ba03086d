using System.Text.Json;
using System.Text.Json.Nodes;
using MixupBert.Model.Bert;
using MixupBert.Model.Weights;

namespace MixupBert.Model.Training;

/// <summary>
/// The files of one run's output folder. The best model sits at the top as a transformers-loadable
/// checkpoint (config.json, model.safetensors, vocab.txt, tokenizer_config.json); state/ holds what
/// --resume needs after the last completed epoch (weights, Adam moments, trainer_state.json). Every
/// file is written under a temporary name and renamed, so a crash never leaves a torn one.
/// </summary>
public sealed class RunFolder(string path)
{
    public string Path { get; } = System.IO.Path.GetFullPath(path);
    public string MetricsFile => Combine("metrics.jsonl");
    public string SummaryFile => Combine("summary.json");
    public string ArgsFile => Combine("args.json");
    public string StateDir => Combine("state");
    public string StateFile => System.IO.Path.Combine(StateDir, "trainer_state.json");

    private string Combine(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>A run is there when it has args.json (written once its inputs were all checked).</summary>
    public bool HoldsRun => File.Exists(ArgsFile);

    public static void WriteAtomic(string file, string text)
    {
        string tmp = file + ".tmp";
        File.WriteAllText(tmp, text);
        File.Move(tmp, file, overwrite: true);
    }

    public static string Json(JsonNode node) => node.ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    public void WriteArgs(JsonObject args)
    {
        Directory.CreateDirectory(Path);
        WriteAtomic(ArgsFile, Json(args));
    }

    /// <summary>The model as transformers loads it, plus the tokenizer files it was trained with.</summary>
    public void SaveModel(BertConfig config, float[] parameters, string tokenizerFolder)
    {
        BertCheckpoint.Save(Path, config, parameters);
        foreach (var f in new[] { "vocab.txt", "tokenizer_config.json", "special_tokens_map.json" })
        {
            string src = System.IO.Path.Combine(tokenizerFolder, f);
            if (File.Exists(src) && System.IO.Path.GetFullPath(src) != System.IO.Path.GetFullPath(Combine(f)))
            {
                File.Copy(src, Combine(f) + ".tmp", overwrite: true);
                File.Move(Combine(f) + ".tmp", Combine(f), overwrite: true);
            }
        }
    }

    /// <summary>Saves what --resume needs: weights and Adam moments (safetensors) and the trainer state.</summary>
    public void SaveState(BertConfig config, float[] parameters, float[] m, float[] v, JsonObject state)
    {
        Directory.CreateDirectory(StateDir);
        BertCheckpoint.Save(StateDir, config, parameters);
        SafeTensorsWriter.Write(System.IO.Path.Combine(StateDir, "optimizer.safetensors"), new[]
        {
            ("exp_avg", new long[] { m.Length }, (ReadOnlyMemory<float>)m),
            ("exp_avg_sq", new long[] { v.Length }, (ReadOnlyMemory<float>)v),
        });
        WriteAtomic(StateFile, Json(state)); // last: a state file means the tensors beside it are complete
    }

    public (float[] Parameters, float[] M, float[] V, JsonObject State) LoadState(BertConfig config)
    {
        if (!File.Exists(StateFile)) throw new ModelFormatException($"{Path}: nothing to resume (no state/trainer_state.json: the run did not complete an epoch)");
        var state = JsonNode.Parse(File.ReadAllText(StateFile))!.AsObject();
        var (_, parameters, _) = BertCheckpoint.Load(StateDir, config.Id2Label);
        using var reader = new SafeTensorsReader(System.IO.Path.Combine(StateDir, "optimizer.safetensors"));
        var m = new float[parameters.Length]; var v = new float[parameters.Length];
        reader.ReadFloat32("exp_avg", m);
        reader.ReadFloat32("exp_avg_sq", v);
        return (parameters, m, v, state);
    }

    /// <summary>Keeps the metrics.jsonl records up to <paramref name="step"/> (a resumed run rewrites what came after).</summary>
    public void TruncateMetrics(long step)
    {
        if (!File.Exists(MetricsFile)) return;
        var keep = File.ReadAllLines(MetricsFile).Where(l => l.Length > 0 && JsonNode.Parse(l)?["step"]?.GetValue<long>() <= step).ToArray();
        WriteAtomic(MetricsFile, keep.Length == 0 ? "" : string.Join('\n', keep) + "\n");
    }

    public void AppendMetrics(JsonObject record)
    {
        Directory.CreateDirectory(Path);
        using var f = new StreamWriter(MetricsFile, append: true);
        f.WriteLine(record.ToJsonString());
    }
}
