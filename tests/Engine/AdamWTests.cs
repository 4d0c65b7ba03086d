using MixupBert.Kernels.Cpu;

namespace MixupBert.Tests.Engine;

public class AdamWTests
{
    /// <summary>torch.optim.AdamW's update written out in double, step by step.</summary>
    private static void Reference(double[] p, double[] g, double[] m, double[] v, double lr, double b1, double b2, double eps, double wd, int t)
    {
        for (int i = 0; i < p.Length; i++)
        {
            p[i] *= 1 - lr * wd;
            m[i] = b1 * m[i] + (1 - b1) * g[i];
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
            double denom = Math.Sqrt(v[i]) / Math.Sqrt(1 - Math.Pow(b2, t)) + eps;
            p[i] -= lr / (1 - Math.Pow(b1, t)) * m[i] / denom;
        }
    }

    [Fact]
    public void ThreeStepsMatchPyTorchsFormula()
    {
        var rng = new Random(9);
        int n = 1000 + 13; // vector body and scalar tail
        var p = TestSupport.Random(rng, n); var m = new float[n]; var v = new float[n];
        var pd = p.Select(x => (double)x).ToArray(); var md = new double[n]; var vd = new double[n];
        for (int t = 1; t <= 3; t++)
        {
            var g = TestSupport.Random(rng, n, 0.1f);
            AdamW.Step(p, g, m, v, new AdamW.Hyper(1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, t));
            Reference(pd, g.Select(x => (double)x).ToArray(), md, vd, 1e-3, 0.9, 0.999, 1e-8, 0.01, t);
        }
        for (int i = 0; i < n; i++) Assert.True(Math.Abs(p[i] - pd[i]) < 1e-6, $"element {i}: {p[i]} vs {pd[i]}");
    }
}
