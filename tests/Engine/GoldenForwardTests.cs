using System.Text.Json;
using MixupBert.Model.Bert;

namespace MixupBert.Tests.Engine;

/// <summary>
/// Forward parity with a reference nobody here wrote: ONNX Runtime's outputs of the original
/// all-MiniLM-L6-v2 for a padded batch (../shared/golden/minilm-forward.json).
/// </summary>
public class GoldenForwardTests
{
    [Fact]
    public void MiniLmMatchesOnnxRuntimeWithin1e4()
    {
        var (config, parameters, report) = BertCheckpoint.Load(TestSupport.MiniLmDir);
        Assert.Equal(new[] { "classifier.weight", "classifier.bias" }, report.Initialized); // a BertModel checkpoint has no classifier
        var golden = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestSupport.SharedDir, "golden", "minilm-forward.json"))).RootElement;
        int[][] Rows(string name) => golden.GetProperty(name).EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetInt32()).ToArray()).ToArray();
        var ids = Rows("input_ids"); var mask = Rows("attention_mask"); var types = Rows("token_type_ids");
        int B = ids.Length, T = ids[0].Length, C = config.HiddenSize;
        var batch = new Batch(B, T, config.NumLabels);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
            {
                batch.InputIds[b * T + t] = ids[b][t];
                batch.AttentionMask[b * T + t] = mask[b][t];
                batch.TokenTypeIds[b * T + t] = types[b][t];
            }
        batch.SetLabels(new int[B]);
        var model = new BertClassifier(config, parameters);
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
        Assert.True(worstHidden < 1e-4, $"last_hidden_state differs from ONNX Runtime by {worstHidden:E2}");
        Assert.True(worstPooled < 1e-4, $"pooler_output differs from ONNX Runtime by {worstPooled:E2}");
    }
}
