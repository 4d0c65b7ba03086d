using MixupBert.Model.Bert;
using MixupBert.Model.Weights;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Training;

/// <summary>Configs that cannot fit and weights that are not finite end the real commands with exit 2
/// and a message naming the file, not a stack trace, an 18 GB process or a NaN loss.</summary>
public class BadModelCliTests
{
    /// <summary>The child's GC heap is capped so that a regression fails fast instead of exhausting the machine.</summary>
    private static readonly Dictionary<string, string?> SmallHeap = new() { ["DOTNET_GCHeapHardLimit"] = "0x40000000" };

    private static string ModelWithConfig(Action<System.Text.Json.Nodes.JsonObject> edit)
    {
        var dir = Cli.TinyModelRepo(TempDir());
        var path = Path.Combine(dir, "config.json");
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(json);
        File.WriteAllText(path, json.ToJsonString());
        return dir;
    }

    [Fact]
    public void InspectRefusesAHugeLabelCount()
    {
        var dir = ModelWithConfig(j => { j.Remove("id2label"); j.Remove("label2id"); j["num_labels"] = 1_000_000_000; });
        var r = Cli.Run(SmallHeap, "inspect", "--model", dir);
        Assert.True(r.ExitCode == 2, r.All);
        Assert.Contains(Path.Combine(dir, "config.json"), r.Stderr);
        Assert.Contains("'num_labels' must be in 1..10000, got 1000000000", r.Stderr);
    }

    [Fact]
    public void InspectRefusesAConfigLargerThanMemoryWithTheFigure()
    {
        // 30522 x 8192 embeddings and 12 layers of hidden 8192: 9.9 billion parameters
        var dir = ModelWithConfig(j => { j["hidden_size"] = 8192; j["num_attention_heads"] = 8; j["intermediate_size"] = 32768; j["num_hidden_layers"] = 12; });
        var r = Cli.Run(SmallHeap, "inspect", "--model", dir);
        Assert.True(r.ExitCode == 2, r.All);
        Assert.Contains(Path.Combine(dir, "config.json"), r.Stderr);
        Assert.Contains("parameters", r.Stderr);
        Assert.DoesNotContain("   at ", r.All); // no stack trace

        var fitsOneBuffer = ModelWithConfig(j => { j["hidden_size"] = 1024; j["num_attention_heads"] = 8; j["intermediate_size"] = 4096; j["num_hidden_layers"] = 24; });
        var r2 = Cli.Run(SmallHeap, "inspect", "--model", fitsOneBuffer); // bert-large's shape: 1.3 GiB of weights, a 1 GiB heap
        Assert.True(r2.ExitCode == 2, r2.All);
        Assert.Contains("GiB of memory is available", r2.Stderr);
    }

    private static string ModelWithNaN()
    {
        var dir = Cli.TinyModelRepo(TempDir());
        var (config, p, _) = BertCheckpoint.Load(dir);
        p[new BertLayout(config)["bert.encoder.layer.0.output.dense.weight"].Offset + 3] = float.NaN;
        BertCheckpoint.Save(dir, config, p);
        return dir;
    }

    [Fact]
    public void PredictAndEvalRefuseNaNWeightsNamingTheTensor()
    {
        var dir = ModelWithNaN();
        var predict = Cli.Run(SmallHeap, "predict", "--checkpoint", dir, "--backend", "cpu", "a fine film");
        Assert.True(predict.ExitCode == 2, predict.All);
        Assert.Contains("tensor 'bert.encoder.layer.0.output.dense.weight'", predict.Stderr);
        Assert.Contains("NaN", predict.Stderr);
        Assert.Equal("", predict.Stdout.Trim());

        var data = Path.Combine(TempDir(), "test.csv");
        File.WriteAllText(data, "text,label\na fine film,1\na dull film,0\n");
        var eval = Cli.Run(SmallHeap, "eval", "--checkpoint", dir, "--dataset", data, "--split", "train", "--backend", "cpu");
        Assert.True(eval.ExitCode == 2, eval.All);
        Assert.Contains("tensor 'bert.encoder.layer.0.output.dense.weight'", eval.Stderr);
    }
}
