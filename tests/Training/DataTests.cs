using MixupBert.Model.Data;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Training;

public class DataTests
{
    private static string Write(string name, string content)
    {
        var dir = TempDir();
        File.WriteAllText(Path.Combine(dir, name), content);
        return Path.Combine(dir, name);
    }

    [Fact]
    public void ValidationIsASeededStratifiedShareOfTrainWhenMissing()
    {
        var rows = string.Concat(Enumerable.Range(0, 100).Select(i => $"{{\"text\": \"t{i}\", \"label\": \"{(i < 80 ? "a" : "b")}\"}}\n"));
        var files = new Dictionary<string, string> { ["train"] = Write("train.jsonl", rows) };
        var d1 = TextClassificationData.Load(files, "text", "label", seed: 7);
        var d2 = TextClassificationData.Load(files, "text", "label", seed: 7);
        Assert.True(d1.ValidationFromTrain);
        Assert.Equal(new[] { "a", "b" }, d1.LabelNames);
        Assert.Equal(8, d1.Validation.Labels.Count(l => l == 0)); // 10% of each class
        Assert.Equal(2, d1.Validation.Labels.Count(l => l == 1));
        Assert.Equal(90, d1.Train.Count);
        Assert.Empty(d1.Train.Texts.Intersect(d1.Validation.Texts));
        Assert.Equal(d1.Validation.Texts, d2.Validation.Texts); // seeded
        Assert.NotEqual(d1.Validation.Texts, TextClassificationData.Load(files, "text", "label", seed: 8).Validation.Texts);
        Assert.Null(d1.Test);
    }

    [Fact]
    public void TrainSubsetsAreStratifiedAndSeeded()
    {
        var rows = "text,label\n" + string.Concat(Enumerable.Range(0, 90).Select(i => $"t{i},{i % 3}\n"));
        var files = new Dictionary<string, string> { ["train"] = Write("train.csv", rows), ["validation"] = Write("validation.csv", "text,label\nv,0\nw,2\n") };
        var data = TextClassificationData.Load(files, "text", "label", seed: 1);
        Assert.Equal(new[] { "0", "1", "2" }, data.LabelNames); // integer labels: class ids
        var few = data.TrainSubset(null, 4, seed: 3);
        Assert.Equal(12, few.Count);
        Assert.All(Enumerable.Range(0, 3), c => Assert.Equal(4, few.Labels.Count(l => l == c)));
        var sized = data.TrainSubset(10, null, seed: 3);
        Assert.Equal(10, sized.Count);
        Assert.All(Enumerable.Range(0, 3), c => Assert.InRange(sized.Labels.Count(l => l == c), 3, 4));
        Assert.Equal(few.Texts, data.TrainSubset(null, 4, seed: 3).Texts);
        var e = Assert.Throws<DataFormatException>(() => data.TrainSubset(null, 31, seed: 3));
        Assert.Contains("--per-class 31", e.Message);
    }

    [Fact]
    public void TokenizerFollowsTheModelsConfigAndMapsControlCharactersToSpaces()
    {
        var encoder = TextEncoder.FromModelFolder(MiniLmDir);
        // golden ids from ../shared/golden (the ONNX export's tokenizer): "the film is amazing and very fun!"
        Assert.Equal(new[] { 101, 1996, 2143, 2003, 6429, 1998, 2200, 4569, 999, 102 }, encoder.Encode("The film is AMAZING and very fun!", 128));
        Assert.Equal(encoder.Encode("this is a cafe", 128), encoder.Encode("this\nis\ta café", 128)); // lower case, accents stripped, \n \t split
        var truncated = encoder.Encode("one two three four five six", 5);
        Assert.Equal(5, truncated.Length);
        Assert.Equal(101, truncated[0]);
        Assert.Equal(102, truncated[^1]);
    }
}
