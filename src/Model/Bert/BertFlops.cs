using MixupBert.Model.Weights;

namespace MixupBert.Model.Bert;

/// <summary>
/// FLOPs of BERT as its GEMMs compute them. Per layer and token, forward: 2·(4C² + 2CI) for the
/// projections (2 × the non-embedding parameters) plus 4·T·C for QKᵀ and P·V; backward is twice
/// the forward, so a training step is 6 × non-embedding parameters + 12·T·C per layer and token.
/// Embeddings, the pooler and the classifier are left out (negligible).
/// </summary>
public static class BertFlops
{
    public static double Forward(BertConfig c, int batch, int seqLen)
    {
        double tokens = (double)batch * seqLen, C = c.HiddenSize, I = c.IntermediateSize;
        return c.NumHiddenLayers * tokens * (2 * (4 * C * C + 2 * C * I) + 4.0 * seqLen * C);
    }

    public static double TrainingStep(BertConfig c, int batch, int seqLen) => 3 * Forward(c, batch, seqLen);
}
