using MixupBert.Model.Bert;
using MixupBert.Model.Data;
using MixupBert.Model.Experiments;
using MixupBert.Model.Hub;
using MixupBert.Model.Training;
using MixupBert.Model.Weights;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Training;

/// <summary>Sentence-pair classification between the data files and the trainer: every split encoded as pairs,
/// a model without a second segment refused, a missing second text named, a grid that changes the pair column
/// refused. (The tokenizer's pairs: TokenizerReferenceTests; the trainer's batches: TrainerTests.)</summary>
public class SentencePairTests
{
    private static string PairDataset()
    {
        var dir = TempDir();
        string Rows(int from, int n) => "sentence1,sentence2,label\n" + string.Concat(Enumerable.Range(from, n).Select(i => $"first text {i},second text {i} here,{i % 2}\n"));
        File.WriteAllText(Path.Combine(dir, "train.csv"), Rows(0, 20));
        File.WriteAllText(Path.Combine(dir, "test.csv"), Rows(20, 6));
        return dir;
    }

    private static PreparedRun Prepare(string model, string dataset) =>
        FineTuning.Prepare(new RunInputs(model, dataset, TextColumn: "sentence1", TextPairColumn: "sentence2"), new TrainOptions { MaxLength = 32 },
            new HubClient(new HubSettings("http://127.0.0.1:9", TempDir(), true, null)), _ => { });

    [Fact]
    public void EverySplitIsEncodedAsPairs()
    {
        var prepared = Prepare(Cli.TinyModelRepo(TempDir()), PairDataset());
        foreach (var (split, texts) in new[] { (prepared.Encoded.Train, prepared.Train), (prepared.Encoded.Validation, prepared.Data.Validation), (prepared.Encoded.Test!, prepared.Data.Test!) })
        {
            Assert.NotNull(split.SecondStarts);
            for (int i = 0; i < split.Ids.Length; i++)
            {
                var (ids, second) = prepared.Encoder.EncodePair(texts.Texts[i], texts.Pairs![i], 32);
                Assert.Equal(ids, split.Ids[i]);
                Assert.Equal(second, split.SecondStarts![i]);
            }
        }
    }

    [Fact]
    public void AModelWithoutASecondSegmentIsRefusedBeforeTraining()
    {
        var dir = Path.Combine(TempDir(), "one-segment");
        var config = TinyConfig(labels: 2) with { VocabSize = 30522, TypeVocabSize = 1 };
        BertCheckpoint.Save(dir, config, BertCheckpoint.RandomInit(config, 7));
        foreach (var f in new[] { "vocab.txt", "tokenizer_config.json" }) File.Copy(Path.Combine(MiniLmDir, f), Path.Combine(dir, f));
        var e = Assert.Throws<ModelFormatException>(() => Prepare(dir, PairDataset()));
        Assert.Contains(Path.Combine(dir, "config.json"), e.Message);
        Assert.Contains("type_vocab_size 1", e.Message);
    }

    [Fact]
    public async Task AMissingSecondTextIsNamedWithItsRow()
    {
        var dir = TempDir();
        var jsonl = Path.Combine(dir, "train.jsonl");
        File.WriteAllText(jsonl, "{\"premise\": \"a\", \"hypothesis\": \"b\", \"label\": 0}\n{\"premise\": \"c\", \"hypothesis\": null, \"label\": 1}\n");
        var e = Assert.Throws<DataFormatException>(() => TextTable.Read(jsonl, "premise", "label", pairColumn: "hypothesis"));
        Assert.Contains("line 2: column 'hypothesis': missing text (null)", e.Message);
        var parquet = Path.Combine(dir, "train.parquet");
        await WriteTextParquet(parquet, [("premise", ["a", "c"]), ("hypothesis", ["b", null])], "label", [0, 0]);
        e = Assert.Throws<DataFormatException>(() => TextTable.Read(parquet, "premise", "label", pairColumn: "hypothesis"));
        Assert.Contains("column 'hypothesis', row 1: missing text (null)", e.Message);
        // an empty one is a text: the pair is kept
        File.WriteAllText(jsonl, "{\"premise\": \"a\", \"hypothesis\": \"\", \"label\": 0}\n");
        Assert.Equal([""], TextTable.Read(jsonl, "premise", "label", pairColumn: "hypothesis").Pairs!);
    }

    [Fact]
    public void AGridRunMadeWithAnotherPairColumnIsADifference()
    {
        var folder = TempDir();
        var recorded = new RunInputs("m", "d", TextColumn: "sentence1", TextPairColumn: "sentence2");
        new RunFolder(folder).WriteArgs(new RunArgs(recorded, "m", new Dictionary<string, IReadOnlyList<string>>(), ["0", "1"], new TrainOptions(), 10, "cpu"));
        var run = new PlannedRun(new TrainSize(null, null), 42, MixMode.Baseline, "baseline", folder, new TrainOptions());
        Assert.Empty(ExperimentPlan.Differences(run, recorded));
        Assert.Equal(["--text-pair-column sentence2 (planned: (none))"], ExperimentPlan.Differences(run, recorded with { TextPairColumn = null }));
        // (a grid's other inputs alike: the dataset's own revision)
        Assert.Equal(["--dataset-revision main (planned: refs/convert/parquet)"], ExperimentPlan.Differences(run, recorded with { DatasetRevision = "refs/convert/parquet" }));
    }
}
