using MixupBert.Kernels.Cpu;

namespace MixupBert.Tests.Engine;

/// <summary>The unsafe kernels check every index they turn into a pointer before forming it.</summary>
public class KernelBoundsTests
{
    [Theory]
    [InlineData(10, 0, -1)]   // id past the word table
    [InlineData(-1, 0, -1)]   // negative id
    [InlineData(3, 2, -1)]    // type id past the type table
    [InlineData(3, 0, 1)]     // partner outside the batch of 1
    public void EmbeddingRefusesIdsOutsideItsTables(int id, int typeId, int partnerId)
    {
        int vocab = 10, types = 2, T = 2, C = 4;
        var word = new float[vocab * C]; var pos = new float[T * C]; var type = new float[types * C];
        var ids = new[] { 1, id }; var typeIds = new[] { 0, typeId };
        var partner = partnerId >= 0 ? new[] { partnerId } : null;
        var lambda = partner != null ? new[] { 0.5f } : null;
        var output = new float[T * C];
        Assert.Throws<ArgumentException>(() => Embedding.Forward(ids, typeIds, word, pos, type, output, 1, T, C, partner, lambda));
        Assert.Throws<ArgumentException>(() => Embedding.Backward(output, ids, typeIds, new float[vocab * C], new float[T * C], new float[types * C], 1, T, C, partner, lambda));
    }
}
