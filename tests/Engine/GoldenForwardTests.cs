using System.Text.Json;
using MixupBert.Model.Bert;

namespace MixupBert.Tests.Engine;

/// <summary>
/// Forward parity with a reference nobody here wrote: ONNX Runtime's outputs of the original
/// all-MiniLM-L6-v2 for a padded batch (../shared/golden/minilm-forward.json). The bounds are the
/// figures the README states; they hold on every ISA path (the README names where each was measured).
/// </summary>
public class GoldenForwardTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>The README's claims: largest |ours − ONNX Runtime| over valid positions.</summary>
    public const double HiddenBound = 5e-6, PooledBound = 3e-7;

    [Fact]
    public void MiniLmMatchesOnnxRuntimeToTheReadmesBounds()
    {
        var (config, parameters, report) = BertCheckpoint.Load(TestSupport.MiniLmDir);
        Assert.Equal(new[] { "classifier.weight", "classifier.bias" }, report.Initialized); // a BertModel checkpoint has no classifier
        var golden = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestSupport.SharedDir, "golden", "minilm-forward.json"))).RootElement;
        int[][] Rows(string name) => golden.GetProperty(name).EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetInt32()).ToArray()).ToArray();
        var ids = Rows("input_ids"); var mask = Rows("attention_mask"); var types = Rows("token_type_ids");
        int B = ids.Length, T = ids[0].Length, C = config.HiddenSize;
        var batch = new Batch(T, config.NumLabels, ids.SelectMany(r => r).ToArray(), mask.SelectMany(r => r).Select(m => (float)m).ToArray(),
            new int[B], types.SelectMany(r => r).ToArray());
        var model = new CpuBertEngine(config, parameters);
        model.Forward(batch, training: false);

        var hidden = golden.GetProperty("last_hidden_state").EnumerateArray().Select(v => v.GetSingle()).ToArray();
        var pooled = golden.GetProperty("pooler_output").EnumerateArray().Select(v => v.GetSingle()).ToArray();
        Assert.Equal(B * T * C, hidden.Length);
        double worstHidden = 0, worstPooled = 0;
        var ours = model.LastHiddenState;
        for (int n = 0; n < B * T; n++)
            if (batch.AttentionMask[n] != 0)
                for (int c = 0; c < C; c++) worstHidden = Math.Max(worstHidden, Math.Abs(ours[n * C + c] - hidden[n * C + c]));
        var ourPooled = model.PooledOutput;
        for (int i = 0; i < B * C; i++) worstPooled = Math.Max(worstPooled, Math.Abs(ourPooled[i] - pooled[i]));
        output.WriteLine($"last_hidden_state: {worstHidden:E2}, pooler_output: {worstPooled:E2}");
        Assert.True(worstHidden < HiddenBound, $"last_hidden_state differs from ONNX Runtime by {worstHidden:E2}");
        Assert.True(worstPooled < PooledBound, $"pooler_output differs from ONNX Runtime by {worstPooled:E2}");
    }
}
