using MixupBert.Kernels.Cpu;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Engine;

/// <summary>Every CPU op's backward against central finite differences of its forward.</summary>
public class OpGradientTests
{
    [Fact]
    public void Linear()
    {
        var rng = new Random(1);
        int n = 5, cin = 7, cout = 9;
        var x = Random(rng, n * cin); var w = Random(rng, cout * cin); var b = Random(rng, cout);
        var gy = Random(rng, n * cout); var y = new float[n * cout];
        double Loss() { Kernels.Cpu.Linear.Forward(x, w, b, y, n, cin, cout); return GradCheck.Dot(gy, y); }
        var dx = new float[n * cin]; var dw = new float[cout * cin]; var db = new float[cout];
        Kernels.Cpu.Linear.Backward(gy, x, w, dx, dw, db, n, cin, cout);
        GradCheck.Check("linear dx", x, dx, Loss);
        GradCheck.Check("linear dW", w, dw, Loss);
        GradCheck.Check("linear db", b, db, Loss);
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(0.25f)]
    public void DropoutResidualLayerNormIsDropoutThenTheSumThenLayerNorm(float p)
    {
        var rng = new Random(11);
        int rows = 70, cols = 48;
        var x = Random(rng, rows * cols, 2f); var res = Random(rng, rows * cols); var g = Random(rng, cols); var b = Random(rng, cols);
        uint key = Kernels.Cpu.Dropout.Key(3, 4, 5);
        var sum = new float[rows * cols];
        Kernels.Cpu.Dropout.Forward(x, sum, p, key);
        for (int i = 0; i < sum.Length; i++) sum[i] += res[i];
        var y1 = new float[rows * cols]; var m1 = new float[rows]; var r1 = new float[rows];
        Kernels.Cpu.LayerNorm.Forward(sum, g, b, y1, m1, r1, rows, cols, 1e-12f);
        var sum2 = new float[rows * cols]; var y2 = new float[rows * cols]; var m2 = new float[rows]; var r2 = new float[rows];
        Kernels.Cpu.LayerNorm.DropoutResidualForward(x, res, g, b, sum2, y2, m2, r2, rows, cols, 1e-12f, p, key);
        Assert.Equal(sum, sum2);   // the sum is kept for the backward
        Assert.Equal(y1, y2);
        Assert.Equal(m1, m2);
        Assert.Equal(r1, r2);
        // the sum may overwrite x (the engines keep it in its own buffer, but the op allows it)
        Kernels.Cpu.LayerNorm.DropoutResidualForward(x, res, g, b, x, y2, m2, r2, rows, cols, 1e-12f, p, key);
        Assert.Equal(sum, x);
        Assert.Equal(y1, y2);
    }

    [Theory]
    [InlineData(4, 10)]
    [InlineData(130, 33)] // more rows than one reduction chunk
    public void LayerNorm(int rows, int cols)
    {
        var rng = new Random(rows);
        var x = Random(rng, rows * cols, 2f); var g = Random(rng, cols); var b = Random(rng, cols);
        var gy = Random(rng, rows * cols); var y = new float[rows * cols];
        var mean = new float[rows]; var rstd = new float[rows];
        double Loss() { Kernels.Cpu.LayerNorm.Forward(x, g, b, y, mean, rstd, rows, cols, 1e-5f); return GradCheck.Dot(gy, y); }
        Loss();
        var dx = new float[rows * cols]; var dg = new float[cols]; var dbeta = new float[cols];
        Kernels.Cpu.LayerNorm.Backward(gy, x, mean, rstd, g, dx, dg, dbeta, rows, cols);
        GradCheck.Check("layernorm dx", x, dx, Loss, stride: rows > 10 ? 7 : 1, step: 1e-2f);
        GradCheck.Check("layernorm dgamma", g, dg, Loss);
        GradCheck.Check("layernorm dbeta", b, dbeta, Loss);
        // accumulateDx adds the same dx onto what is there
        var dxAcc = new float[rows * cols]; Array.Fill(dxAcc, 1f);
        Kernels.Cpu.LayerNorm.Backward(gy, x, mean, rstd, g, dxAcc, new float[cols], new float[cols], rows, cols, accumulateDx: true);
        for (int i = 0; i < dx.Length; i++) Assert.Equal(1f + dx[i], dxAcc[i], 1e-5f);
    }

    [Fact]
    public void Gelu()
    {
        var rng = new Random(2);
        int n = 1000; // vector body and scalar tail
        var x = Random(rng, n + 7, 5f); var gy = Random(rng, n + 7); var y = new float[n + 7];
        double Loss() { Activations.GeluForward(x, y); return GradCheck.Dot(gy, y); }
        var dx = new float[n + 7];
        Activations.GeluBackward(x, gy, dx);
        GradCheck.Check("gelu", x, dx, Loss, step: 1e-3f);
    }

    [Fact]
    public void GeluIsTheExactErfForm()
    {
        // reference values of x·Φ(x) computed in double with a series erf (independent of the kernel's approximation)
        static double Erf(double z) { double sum = 0, term = z; for (int k = 0; k < 200; k++) { sum += term / (2 * k + 1); term *= -z * z / (k + 1); } return 2 / Math.Sqrt(Math.PI) * sum; }
        foreach (double x in new[] { -3.7, -1.5, -0.3, 0.0, 0.2, 1.0, 2.5, 3.9 })
        {
            double expected = 0.5 * x * (1 + Erf(x / Math.Sqrt(2)));
            Assert.True(Math.Abs(Activations.Gelu((float)x) - expected) < 2e-6, $"gelu({x}) = {Activations.Gelu((float)x)}, expected {expected}");
        }
    }

    [Fact]
    public void Tanh()
    {
        var rng = new Random(3);
        var x = Random(rng, 37, 2f); var gy = Random(rng, 37); var y = new float[37];
        double Loss() { Activations.TanhForward(x, y); return GradCheck.Dot(gy, y); }
        Loss();
        var dx = new float[37];
        Activations.TanhBackward(y, gy, dx);
        GradCheck.Check("tanh", x, dx, Loss, step: 1e-3f);
    }

    [Theory]
    [InlineData(2, 5, 12, 3, 0f)]
    [InlineData(1, 1, 8, 2, 0f)]   // a sequence of length 1
    [InlineData(3, 7, 8, 2, 0.3f)] // attention dropout on: the mask is a function of the key, so FD still works
    [InlineData(2, 37, 64, 2, 0.1f)] // head size 32, T = 37: the vector tiles of SmallGemm and a padded softmax
    public void Attention(int batch, int seqLen, int channels, int heads, float dropout)
    {
        var rng = new Random(batch * 100 + seqLen);
        int n = batch * seqLen;
        var qkv = Random(rng, n * 3 * channels);
        var mask = new float[n];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < seqLen; t++) mask[b * seqLen + t] = t < Math.Max(1, seqLen - 2 * b) ? 1 : 0;
        var probs = new float[batch * heads * seqLen * seqLen]; var ctx = new float[n * channels];
        var gy = Random(rng, n * channels);
        uint key = Kernels.Cpu.Dropout.Key(7, 3, 1);
        double Loss() { Kernels.Cpu.Attention.Forward(qkv, mask, probs, ctx, batch, seqLen, channels, heads, dropout, key); return GradCheck.Dot(gy, ctx); }
        Loss();
        var dqkv = new float[n * 3 * channels];
        Kernels.Cpu.Attention.Backward(gy, qkv, probs, dqkv, batch, seqLen, channels, heads, dropout, key);
        GradCheck.Check("attention dqkv", qkv, dqkv, Loss, step: 1e-2f);
        // masked keys receive no attention at all
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < seqLen; i++)
                    for (int j = 0; j < seqLen; j++)
                        if (mask[b * seqLen + j] == 0) Assert.Equal(0f, probs[((b * heads + h) * seqLen + i) * seqLen + j]);
    }

    [Fact]
    public void Embedding()
    {
        var rng = new Random(4);
        int batch = 3, seqLen = 4, c = 6, vocab = 5;
        var word = Random(rng, vocab * c); var pos = Random(rng, seqLen * c); var type = Random(rng, 2 * c);
        int[] ids = { 1, 2, 2, 0, 4, 1, 3, 3, 0, 0, 1, 2 }, types = { 0, 0, 1, 1, 0, 0, 0, 0, 1, 0, 1, 0 };
        var y = new float[batch * seqLen * c]; var gy = Random(rng, y.Length);
        double Loss() { Kernels.Cpu.Embedding.Forward(ids, types, word, pos, type, y, batch, seqLen, c); return GradCheck.Dot(gy, y); }
        var dw = new float[word.Length]; var dp = new float[pos.Length]; var dt = new float[type.Length];
        Kernels.Cpu.Embedding.Backward(gy, ids, types, dw, dp, dt, batch, seqLen, c);
        GradCheck.Check("embedding dword", word, dw, Loss);
        GradCheck.Check("embedding dpos", pos, dp, Loss);
        GradCheck.Check("embedding dtype", type, dt, Loss);
    }

    [Fact]
    public void MixedEmbedding()
    {
        var rng = new Random(5);
        int batch = 2, seqLen = 3, c = 4, vocab = 6;
        var word = Random(rng, vocab * c); var pos = Random(rng, seqLen * c); var type = Random(rng, 2 * c);
        int[] ids = { 1, 2, 5, 0, 4, 1 }, partner = { 1, 1 }, types = { 0, 0, 1, 1, 0, 0 }; // example 1 mixed with itself
        float[] lambda = { 0.3f, 0.8f };
        var y = new float[batch * seqLen * c]; var gy = Random(rng, y.Length);
        double Loss() { Kernels.Cpu.Embedding.Forward(ids, types, word, pos, type, y, batch, seqLen, c, partner, lambda); return GradCheck.Dot(gy, y); }
        var dw = new float[word.Length]; var dp = new float[pos.Length]; var dt = new float[type.Length];
        Kernels.Cpu.Embedding.Backward(gy, ids, types, dw, dp, dt, batch, seqLen, c, partner, lambda);
        GradCheck.Check("mixed embedding dword", word, dw, Loss);
        GradCheck.Check("mixed embedding dpos", pos, dp, Loss);
        // λ = 1 is the plain lookup
        var plain = new float[y.Length];
        Kernels.Cpu.Embedding.Forward(ids, types, word, pos, type, plain, batch, seqLen, c);
        Kernels.Cpu.Embedding.Forward(ids, types, word, pos, type, y, batch, seqLen, c, partner, new[] { 1f, 1f });
        Assert.Equal(plain, y);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void CrossEntropy(bool mixed)
    {
        var rng = new Random(6);
        int batch = 4, classes = 3;
        var logits = Random(rng, batch * classes, 3f);
        int[] labels = { 0, 1, 2, 1 }, partner = mixed ? new[] { 1, 0, 3, 3 } : [];
        float[] lambda = mixed ? new[] { 0.3f, 1f, 0f, 0.6f } : [];
        var probs = new float[batch * classes]; var losses = new float[batch];
        double Loss() => Kernels.Cpu.CrossEntropy.Forward(logits, labels, partner, lambda, probs, losses, default, batch, classes);
        var d = new float[batch * classes];
        Kernels.Cpu.CrossEntropy.Forward(logits, labels, partner, lambda, probs, losses, d, batch, classes);
        GradCheck.Check("cross-entropy dlogits", logits, d, Loss, step: 1e-3f);
        double mean = Loss(); // the mean of the per-example losses
        Assert.Equal(losses.Average(), mean, 6);
    }

    [Fact]
    public void MixedCrossEntropyIsTheLambdaWeightedLosses()
    {
        var logits = new float[] { 0.2f, -1.3f, 0.7f, 1f, 0f, -1f };
        var probs = new float[6]; var losses = new float[2];
        Kernels.Cpu.CrossEntropy.Forward(logits, new[] { 0, 2 }, default, default, probs, losses, default, 2, 3);
        var (la, lb) = (losses[0], losses[1]);
        Kernels.Cpu.CrossEntropy.Forward(logits, new[] { 0, 2 }, new[] { 1, 1 }, new[] { 0.35f, 0.9f }, probs, losses, default, 2, 3);
        // example 0 is scored against 0.35·y₀ + 0.65·y₁ on its own logits, so compare with its own CE terms
        var alone = new float[1];
        Kernels.Cpu.CrossEntropy.Forward(logits.AsSpan(0, 3), new[] { 2 }, default, default, probs, alone, default, 1, 3);
        Assert.Equal(0.35 * la + 0.65 * alone[0], losses[0], 5);
        Assert.Equal(lb, losses[1], 5); // its partner is itself: λ·CE + (1 − λ)·CE
    }

    [Theory]
    [InlineData(7)] // hidden states: T rows per example
    [InlineData(1)] // pooled vectors
    public void Mixup(int rows)
    {
        var rng = new Random(13);
        int batch = 4, c = 5, n = batch * rows * c;
        var x = Random(rng, n); var gy = Random(rng, n); var y = new float[n];
        int[] partner = { 2, 2, 0, 3 };       // example 2 is the partner of two; 3 of itself
        float[] lambda = { 0.3f, 1f, 0f, 0.6f };
        double Loss() { Kernels.Cpu.Mixup.Forward(x, partner, lambda, y, batch, rows, c); return GradCheck.Dot(gy, y); }
        var dx = Random(rng, n); // overwritten
        Kernels.Cpu.Mixup.Backward(gy, partner, lambda, dx, batch, rows, c);
        GradCheck.Check("mixup dx", x, dx, Loss);
        // λ = 1 is the example itself, λ = 0 its partner
        Loss();
        Assert.Equal(x.AsSpan(1 * rows * c, rows * c).ToArray(), y.AsSpan(1 * rows * c, rows * c).ToArray());
        Assert.Equal(x.AsSpan(0, rows * c).ToArray(), y.AsSpan(2 * rows * c, rows * c).ToArray());
    }

    [Fact]
    public void FirstToken()
    {
        var rng = new Random(14);
        int batch = 3, seqLen = 4, c = 5;
        var hidden = Random(rng, batch * seqLen * c); var gy = Random(rng, batch * c); var first = new float[batch * c];
        double Loss() { Kernels.Cpu.FirstToken.Forward(hidden, first, batch, seqLen, c); return GradCheck.Dot(gy, first); }
        var dh = Random(rng, hidden.Length); // overwritten
        Kernels.Cpu.FirstToken.Backward(gy, dh, batch, seqLen, c);
        GradCheck.Check("first token dhidden", hidden, dh, Loss);
    }

    [Fact]
    public void Dropout()
    {
        var rng = new Random(7);
        var x = Random(rng, 4099); var y = new float[x.Length]; var gy = Random(rng, x.Length);
        uint key = Kernels.Cpu.Dropout.Key(1, 2, 3);
        double Loss() { Kernels.Cpu.Dropout.Forward(x, y, 0.25f, key); return GradCheck.Dot(gy, y); }
        Loss();
        int dropped = y.Count(v => v == 0f);
        Assert.InRange(dropped, 4099 * 0.2, 4099 * 0.3); // about p of the elements
        var dx = new float[x.Length];
        Kernels.Cpu.Dropout.Backward(gy, dx, 0.25f, key, accumulate: false);
        GradCheck.Check("dropout", x, dx, Loss, stride: 13);
        // another key draws another mask
        var y2 = new float[x.Length];
        Kernels.Cpu.Dropout.Forward(x, y2, 0.25f, Kernels.Cpu.Dropout.Key(1, 3, 3));
        Assert.NotEqual(y, y2);
    }

    [Fact]
    public void ColumnSumsAreTheBiasGradient()
    {
        var rng = new Random(8);
        int rows = 200, cols = 5;
        var x = Random(rng, rows * cols); var sum = new float[cols]; sum[0] = 1f;
        Reduce.AddColumnSums(x, rows, cols, sum);
        for (int c = 0; c < cols; c++)
        {
            double s = c == 0 ? 1 : 0;
            for (int r = 0; r < rows; r++) s += x[r * cols + c];
            Assert.Equal(s, sum[c], 4);
        }
    }
}
