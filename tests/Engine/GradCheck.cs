namespace MixupBert.Tests.Engine;

/// <summary>
/// Central finite differences for float32 code. The scalar under test is a fixed random linear
/// functional of the op's outputs, summed in double, so the only noise is the op's own float32
/// rounding. The step is large enough that this noise, divided by 2h, stays far below the
/// tolerance, and small enough that the O(h²) truncation does too: h = 1e-2 on inputs of order 1
/// gives an error of order 1e-4 on gradients of order 1, while a wrong backward is off by order 1.
/// </summary>
public static class GradCheck
{
    public const float Step = 1e-2f;
    public const double AbsTol = 2e-3, RelTol = 1e-2;

    /// <summary>Perturbs each element of <paramref name="input"/> (or every stride-th), re-evaluates
    /// <paramref name="loss"/>, and compares with <paramref name="analytic"/>. Returns the worst
    /// violation ratio (error / tolerance): the check passes when it is ≤ 1.</summary>
    public static double WorstRatio(float[] input, ReadOnlySpan<float> analytic, Func<double> loss, int stride = 1, float step = Step)
    {
        double worst = 0;
        for (int i = 0; i < input.Length; i += stride)
        {
            float saved = input[i];
            input[i] = saved + step; double plus = loss();
            input[i] = saved - step; double minus = loss();
            input[i] = saved;
            double numeric = (plus - minus) / (2.0 * step);
            double err = Math.Abs(numeric - analytic[i]);
            double tol = AbsTol + RelTol * Math.Abs(numeric);
            worst = Math.Max(worst, err / tol);
        }
        return worst;
    }

    public static void Check(string what, float[] input, ReadOnlySpan<float> analytic, Func<double> loss, int stride = 1, float step = Step)
    {
        double worst = WorstRatio(input, analytic, loss, stride, step);
        Assert.True(worst <= 1.0, $"{what}: analytic gradient differs from finite differences ({worst:F2}× the tolerance)");
    }

    /// <summary>
    /// One parameter tensor of a whole model: the directional derivative of <paramref name="loss"/>
    /// along <paramref name="direction"/> (normalised) by central differences with step
    /// <paramref name="h"/>, against the analytic g·d. Along g itself it must equal ‖g‖ (catches a
    /// gradient of the wrong scale or direction); along a random direction it catches wrong entries.
    /// Bound: 1e-2·‖g‖ + 1e-4.
    /// </summary>
    public static void Directional(string what, float[] parameters, int offset, float[] g, float[] direction, Func<double> loss, float h = Step)
    {
        double norm = Math.Sqrt(g.Sum(v => (double)v * v));
        double dn = Math.Sqrt(direction.Sum(v => (double)v * v));
        double analytic = 0;
        for (int i = 0; i < g.Length; i++) analytic += g[i] * direction[i] / dn;
        var saved = parameters.AsSpan(offset, g.Length).ToArray();
        for (int i = 0; i < g.Length; i++) parameters[offset + i] = saved[i] + (float)(h * direction[i] / dn);
        double plus = loss();
        for (int i = 0; i < g.Length; i++) parameters[offset + i] = saved[i] - (float)(h * direction[i] / dn);
        double minus = loss();
        saved.CopyTo(parameters.AsSpan(offset, g.Length));
        double numeric = (plus - minus) / (2 * h);
        Assert.True(Math.Abs(numeric - analytic) <= 1e-2 * norm + 1e-4,
            $"{what}: finite difference {numeric:G6}, backward {analytic:G6} (‖g‖ {norm:G4})");
    }

    /// <summary>Σ w·y in double: the scalar whose gradient with respect to y is w.</summary>
    public static double Dot(ReadOnlySpan<float> w, ReadOnlySpan<float> y)
    {
        double s = 0;
        for (int i = 0; i < w.Length; i++) s += (double)w[i] * y[i];
        return s;
    }
}
