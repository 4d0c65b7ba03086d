using MixupBert.Model.Experiments;
using MixupBert.Model.Hub;
using MixupBert.Tool;

namespace MixupBert.Tests.Training;

/// <summary>Numbers as the console lines of train and of downloads print them.</summary>
public class ConsoleOutputTests
{
    [Theory]
    [InlineData(2.5e-5f, "2.5e-05")]
    [InlineData(8.333333e-6f, "8.33e-06")] // a scheduled lr: three significant digits
    [InlineData(1e-4f, "0.0001")]
    [InlineData(0f, "0")]
    public void LearningRatesPrintAsTheReportWritesThem(float lr, string expected)
    {
        Assert.Equal(expected, ConsoleObserver.LearningRate(lr));
        if (lr != 8.333333e-6f) Assert.Equal(Protocol.Lr(lr), ConsoleObserver.LearningRate(lr)); // the report's and the folder names' form
    }

    [Theory]
    [InlineData(300, 612L, "300/612 B")]
    [InlineData(20_000, 48_200L, "20.0/48.2 KB")]
    [InlineData(12_000_000, 438_000_000L, "12.0/438.0 MB")]
    [InlineData(500_000_000, 1_340_000_000L, "0.50/1.34 GB")]
    [InlineData(612, null, "612 B")] // no size known: only what arrived
    [InlineData(48_200, null, "48.2 KB")]
    public void DownloadSizesShowSmallFilesInAUnitThatShowsThem(long received, long? total, string expected) =>
        Assert.Equal(expected, new DownloadProgress("config.json", received, total, 1e3, false).Sizes());

    [Fact]
    public void DownloadRatesHaveAUnitToo()
    {
        Assert.Equal("850 B", DownloadProgress.Size(850));
        Assert.Equal("3.2 MB", DownloadProgress.Size(3.2e6));
        Assert.Equal("1.0 MB", DownloadProgress.Size(999_999)); // not 1000.0 KB
        Assert.Equal("1.0 KB", DownloadProgress.Size(999.7));
    }
}
