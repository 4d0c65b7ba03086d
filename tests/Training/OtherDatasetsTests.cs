using MixupBert.Model.Data;
using MixupBert.Model.Hub;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Training;

/// <summary>Datasets laid out as other benchmarks are (GLUE's files, the Hub's SST-2), found by a review of
/// what the tool did with them: unlabeled test splits, dev files, shards, narrow label types.</summary>
public class OtherDatasetsTests
{
    private static string Rows(int n, bool labels) =>
        string.Concat(Enumerable.Range(0, n).Select(i => labels ? $"a sentence number {i}\t{i % 2}\n" : $"{i}\ta sentence number {i}\n"));

    [Fact]
    public void GlueTsvFilesTakeDevAsValidationAndLeaveTheUnlabeledTestOut()
    {
        // GLUE's original SST-2: train.tsv and dev.tsv with sentence and label, test.tsv with index and sentence
        var dir = TempDir();
        File.WriteAllText(Path.Combine(dir, "train.tsv"), "sentence\tlabel\n" + Rows(20, true));
        File.WriteAllText(Path.Combine(dir, "dev.tsv"), "sentence\tlabel\n" + Rows(6, true));
        File.WriteAllText(Path.Combine(dir, "test.tsv"), "index\tsentence\n" + Rows(5, false));
        using var hub = new HubClient(new HubSettings("http://127.0.0.1:9", TempDir(), true, null));
        var files = Sources.ResolveDataset(dir, hub);
        Assert.Equal([Path.Combine(dir, "dev.tsv")], files["validation"]);
        var data = TextClassificationData.Load(files, "sentence", "label", seed: 1);
        Assert.Equal(6, data.Validation.Count);
        Assert.False(data.ValidationFromTrain);
        Assert.Null(data.Test);
        Assert.Contains(data.Warnings, w => w.Contains("test.tsv") && w.Contains("no label column 'label'") && w.Contains("not used"));
    }

    [Fact]
    public void ATestSplitWhoseLabelsAreAllMinusOneIsLeftOutWithAWarning()
    {
        // the Hub's stanfordnlp/sst2 and glue/sst2: the test split's labels are withheld as -1
        var dir = TempDir();
        File.WriteAllText(Path.Combine(dir, "train.csv"), "sentence,label\n" + string.Concat(Enumerable.Range(0, 20).Select(i => $"s{i},{i % 2}\n")));
        File.WriteAllText(Path.Combine(dir, "test.csv"), "sentence,label\n" + string.Concat(Enumerable.Range(0, 5).Select(i => $"t{i},-1\n")));
        var data = TextClassificationData.Load(new Dictionary<string, string> { ["train"] = Path.Combine(dir, "train.csv"), ["test"] = Path.Combine(dir, "test.csv") }, "sentence", "label", seed: 1);
        Assert.Null(data.Test);
        Assert.Contains(data.Warnings, w => w.Contains("test.csv") && w.Contains("-1"));
        // a -1 among real labels is still an error naming the row
        File.WriteAllText(Path.Combine(dir, "test.csv"), "sentence,label\nt0,1\nt1,-1\n");
        var e = Assert.Throws<DataFormatException>(() => TextClassificationData.Load(
            new Dictionary<string, string> { ["train"] = Path.Combine(dir, "train.csv"), ["test"] = Path.Combine(dir, "test.csv") }, "sentence", "label", seed: 1));
        Assert.Contains("row 1", e.Message);
        // and train without labels is refused, as before
        File.WriteAllText(Path.Combine(dir, "train.csv"), "index,sentence\n0,a\n1,b\n");
        Assert.Contains("no label column", Assert.Throws<DataFormatException>(() => TextClassificationData.Load(
            new Dictionary<string, string> { ["train"] = Path.Combine(dir, "train.csv") }, "sentence", "label", seed: 1)).Message);
    }

    [Fact]
    public void ASplitInSeveralShardsIsReadWholeAndAnErrorNamesItsShardAndRow()
    {
        // datasets' layout data/train-0000K-of-0000N: every shard is the split (it was read from the first one only)
        var dir = TempDir();
        Directory.CreateDirectory(Path.Combine(dir, "data"));
        File.WriteAllText(Path.Combine(dir, "data", "train-00000-of-00002.csv"), "text,label\na,0\nb,1\nc,0\n");
        File.WriteAllText(Path.Combine(dir, "data", "train-00001-of-00002.csv"), "text,label\nd,1\ne,0\nf,1\n");
        File.WriteAllText(Path.Combine(dir, "data", "validation-00000-of-00001.csv"), "text,label\ng,0\nh,1\n");
        using var hub = new HubClient(new HubSettings("http://127.0.0.1:9", TempDir(), true, null));
        var files = Sources.ResolveDataset(dir, hub);
        Assert.Equal(2, files["train"].Count);
        var data = TextClassificationData.Load(files, "text", "label", seed: 1);
        Assert.Equal(["a", "b", "c", "d", "e", "f"], data.Train.Texts);
        Assert.Equal([0, 1, 0, 1, 0, 1], data.Train.Labels);
        Assert.Contains("and 1 more", data.Train.Source);
        File.WriteAllText(Path.Combine(dir, "data", "train-00001-of-00002.csv"), "text,label\nd,1\n,0\n");
        var e = Assert.Throws<DataFormatException>(() => TextClassificationData.Load(files, "text", "label", seed: 1));
        Assert.Contains("train-00001-of-00002.csv: column 'text', row 1: empty text", e.Message);
    }

    [Fact]
    public async Task NarrowIntegerLabelsAreReadAndATextColumnOfNumbersIsNamed()
    {
        var path = Path.Combine(TempDir(), "train.parquet");
        var schema = new Parquet.Schema.ParquetSchema(new Parquet.Schema.DataField<string>("text"), new Parquet.Schema.DataField<sbyte>("label"),
            new Parquet.Schema.DataField<int>("idx"));
        await using (var file = File.Create(path))
        await using (var writer = await Parquet.ParquetWriter.CreateAsync(schema, file))
        {
            using var group = writer.CreateRowGroup();
            await group.WriteAsync(schema.DataFields[0], new[] { "good", "bad", "fine" });
            await group.WriteAsync(schema.DataFields[1], new ReadOnlyMemory<sbyte>([1, 0, 1]));
            await group.WriteAsync(schema.DataFields[2], new ReadOnlyMemory<int>([0, 1, 2]));
        }
        var split = TextTable.Read(path, "text", "label");
        Assert.Equal(new[] { "1", "0", "1" }, split.Labels);
        Assert.True(split.IntegerLabels);
        var e = Assert.Throws<DataFormatException>(() => TextTable.Read(path, "idx", "label"));
        Assert.Contains("column 'idx' holds Int32 values, not text", e.Message);
        Assert.Contains(path, e.Message);
    }
    [Fact]
    public async Task SentencePairsAreReadFromEachFormatAndAMissingColumnIsNamed()
    {
        // glue/mrpc's columns in every format the tool reads: the second text comes with each row
        var dir = TempDir();
        string[] first = ["he said so", "a \"quoted\" one", "third"], second = ["she agreed", "", "x, y"];
        int[] labels = [1, 0, 1];
        var csv = Path.Combine(dir, "train.csv");
        File.WriteAllText(csv, "sentence1,sentence2,label,idx\nhe said so,she agreed,1,0\n\"a \"\"quoted\"\" one\",,0,1\nthird,\"x, y\",1,2\n");
        var tsv = Path.Combine(dir, "train.tsv");
        File.WriteAllText(tsv, "sentence1\tsentence2\tlabel\nhe said so\tshe agreed\t1\na \"quoted\" one\t\t0\nthird\tx, y\t1\n");
        var jsonl = Path.Combine(dir, "train.jsonl");
        File.WriteAllLines(jsonl, first.Select((f, i) => System.Text.Json.JsonSerializer.Serialize(new { sentence1 = f, sentence2 = second[i], label = labels[i] })));
        var parquet = Path.Combine(dir, "train.parquet");
        await WriteTextParquet(parquet, [("sentence1", first), ("sentence2", second)], "label", labels.Select(l => (long)l).ToArray());
        foreach (var path in new[] { csv, tsv, jsonl, parquet })
        {
            var split = TextTable.Read(path, "sentence1", "label", pairColumn: "sentence2");
            Assert.Equal(first, split.Texts);
            Assert.Equal(second, split.Pairs);
            Assert.Null(TextTable.Read(path, "sentence1", "label").Pairs);   // single texts: no second ones
            var e = Assert.Throws<DataFormatException>(() => TextTable.Read(path, "sentence1", "label", pairColumn: "sentence3"));
            Assert.Contains(path, e.Message);
            Assert.Contains("'sentence3'", e.Message);
            Assert.Contains("--text-pair-column", e.Message);
            // the text column missing where the file holds a known pair: the options that read it
            Assert.Contains("--text-column sentence1 --text-pair-column sentence2", Assert.Throws<DataFormatException>(() => TextTable.Read(path, "text", "label")).Message);
        }
        // through Load: a train/test pair dataset keeps each example's second text beside it, across the held-out split
        var data = TextClassificationData.Load(new Dictionary<string, string> { ["train"] = csv, ["test"] = parquet }, "sentence1", "label", seed: 1, pairColumn: "sentence2");
        Assert.Equal(second, data.Test!.Pairs);
        var all = data.Train.Texts.Zip(data.Train.Pairs!).Concat(data.Validation.Texts.Zip(data.Validation.Pairs!)).Order().ToArray();
        Assert.Equal(first.Zip(second).Order().ToArray(), all);
        Assert.Contains("itself", Assert.Throws<ArgumentException>(() =>
            TextClassificationData.Load(new Dictionary<string, string> { ["train"] = csv }, "sentence1", "label", seed: 1, pairColumn: "sentence1")).Message);
    }

    [Fact]
    public void HalfOfASentencePairIsReadWithAWarningSayingSo()
    {
        // glue/mrpc's columns: sentence1, sentence2, label, idx; --text-column sentence1 reads half of each example
        var dir = TempDir();
        var csv = Path.Combine(dir, "train.csv");
        File.WriteAllText(csv, "sentence1,sentence2,label,idx\na,b,0,0\nc,d,1,1\n");
        Assert.Contains(TextTable.Read(csv, "sentence1", "label").Warnings, w => w.Contains("'sentence2'") && w.Contains("classify the pairs with --text-pair-column sentence2"));
        Assert.Empty(TextTable.Read(csv, "sentence1", "label", pairColumn: "sentence2").Warnings);   // read as pairs, nothing to say
        var jsonl = Path.Combine(dir, "train.jsonl");
        File.WriteAllText(jsonl, "{\"premise\": \"a\", \"hypothesis\": \"b\", \"label\": 0}\n");
        Assert.Contains(TextTable.Read(jsonl, "premise", "label").Warnings, w => w.Contains("'hypothesis'"));
        File.WriteAllText(csv, "text,title,label\na,b,0\n");
        Assert.Empty(TextTable.Read(csv, "text", "label").Warnings);   // a single-text dataset says nothing
    }

    [Fact]
    public void NoValidationToHoldOutIsAnErrorBeforeTraining()
    {
        // every class with one example: nothing can be held out (the run used to fail after its first epoch)
        var path = Path.Combine(TempDir(), "train.csv");
        File.WriteAllText(path, "text,label\na,x\nb,y\nc,z\n");
        var e = Assert.Throws<DataFormatException>(() => TextClassificationData.Load(new Dictionary<string, string> { ["train"] = path }, "text", "label", seed: 1));
        Assert.Contains(path, e.Message);
        Assert.Contains("validation", e.Message);
    }
}
