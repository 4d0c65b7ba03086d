using MixupBert.Model.Data;
using MixupBert.Model.Hub;
using MixupBert.Model.Training;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Training;

/// <summary>Data files read as their formats say, and label columns that would make the wrong classes refused.</summary>
public class DataFormatTests
{
    private static string Write(string name, string content)
    {
        var path = Path.Combine(TempDir(), name);
        File.WriteAllText(path, content);
        return path;
    }

    private static DataFormatException LoadFails(string path)
    {
        var files = new Dictionary<string, string> { ["train"] = path };
        return Assert.Throws<DataFormatException>(() => TextClassificationData.Load(files, "text", "label", seed: 1));
    }

    [Fact]
    public void TsvTextsWithQuotesAreOneRowPerLine()
    {
        // SST-2 style: texts with unbalanced and paired double quotes, which a CSV-style reader
        // treats as quoting and so merges rows
        var texts = Enumerable.Range(0, 40).Select(i => (i % 5) switch
        {
            0 => $"the \" director {i} ",
            1 => $"\"a gem\" of a film {i}",
            2 => $"it 's \"\" fine {i}",
            3 => $"\"opening quote only {i}",
            _ => $"plain text {i}",
        }).ToArray();
        var path = Write("train.tsv", "sentence\tlabel\n" + string.Concat(texts.Select((t, i) => $"{t}\t{i % 2}\n")));
        var raw = TextTable.Read(path, "sentence", "label");
        Assert.Equal(40, raw.Texts.Length);
        Assert.Equal(texts, raw.Texts);
        Assert.Equal(Enumerable.Range(0, 40).Select(i => (i % 2).ToString()), raw.Labels);
    }

    [Fact]
    public void TsvRowWithAnotherNumberOfFieldsNamesTheLine()
    {
        var path = Write("train.tsv", "text\tlabel\na\t0\nb\tc\t1\nd\t1\n");
        var e = Assert.Throws<DataFormatException>(() => TextTable.Read(path, "text", "label"));
        Assert.Contains(path, e.Message);
        Assert.Contains("line 3 has 3 fields", e.Message);
    }

    [Fact]
    public void CsvIsReadAsRfc4180()
    {
        var path = Write("train.csv", "text,label\n\"a, quoted \"\"text\"\"\",1\n\"two\nlines\",0\nplain,1\n");
        var raw = TextTable.Read(path, "text", "label");
        Assert.Equal(new[] { "a, quoted \"text\"", "two\nlines", "plain" }, raw.Texts);
        var warning = Assert.Single(raw.Warnings); // 4 lines, 3 rows: said, naming the file
        Assert.Contains(path, warning);
        Assert.Contains("1 of 3 rows span several lines", warning);
    }

    [Theory]
    [InlineData("text,label\nsay \"hi\" now,1\nb,0\n", "line 2")]               // quote inside an unquoted field
    [InlineData("text,label\n\"closed\" then more,1\nb,0\n", "line 2")]         // text after the closing quote
    [InlineData("text,label\n\"never closed,1\nb,0\nc,1\n", "the row starting at line 2 runs to line 4")]    // swallows the rest of the file
    [InlineData("text,label\na,1,extra\nb,0\n", "line 2 has 3 fields")]
    public void MalformedCsvNamesTheFileAndLine(string content, string expected)
    {
        var path = Write("train.csv", content);
        var e = Assert.Throws<DataFormatException>(() => TextTable.Read(path, "text", "label"));
        Assert.Contains(path, e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData("train.csv", "text,label\na,0\nb,1\nc,NaN\n", "label 'NaN' is a missing-value marker")]
    [InlineData("train.csv", "text,label\na,0\nb,1\nc,pos\n", "mixes class ids and class names")]
    [InlineData("train.jsonl", "{\"text\": \"a\", \"label\": 0}\n{\"text\": \"b\", \"label\": \"pos\"}\n", "mixes numbers (first on line 1) and strings (first on line 2)")]
    [InlineData("train.csv", "text,label\na,pos\nb,neg\nc,\"pos \"\n", "label 'pos ' differs from 'pos'")]
    [InlineData("train.jsonl", "{\"text\": \"a\", \"label\": \"pos\"}\n{\"text\": \"b\", \"label\": \"neg\"}\n{\"text\": \"c\", \"label\": \"Pos\"}\n", "label 'Pos' differs from 'pos'")]
    [InlineData("train.csv", "text,label\na,pos\nb,pos\nc,pos\n", "single class ('pos')")]
    [InlineData("train.csv", "text,label\na,1\nb,1\n", "single class ('1')")]
    [InlineData("train.csv", "text,label\na,1\nb,3.8\nc,0.5\n", "column 'label' holds real numbers ('3.8' in row 1), a regression target")] // STS-B: one class per value otherwise
    [InlineData("train.tsv", "text\tlabel\na\t1e-1\nb\t2\n", "holds real numbers ('1e-1' in row 0)")]
    [InlineData("train.csv", "text,label\na,0.0\nb,1.0\nc,2.0\nd,10.0\n", "holds class ids written as real numbers ('0.0' in row 0); write them as integers")] // else ordered as text: 10.0 before 2.0
    [InlineData("train.jsonl", "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": 3.8}\n", "label 3.8 is not an integer")]
    public void LabelColumnsThatWouldMakeWrongClassesAreErrorsNamingTheColumn(string name, string content, string expected)
    {
        var path = Write(name, content);
        var e = LoadFails(path);
        Assert.Contains(path, e.Message);
        Assert.Contains("column 'label'", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void LabelsAcrossSplitsMayNotMixIdsAndNames()
    {
        var files = new Dictionary<string, string>
        {
            ["train"] = Write("train.csv", "text,label\na,0\nb,1\n"),
            ["validation"] = Write("validation.csv", "text,label\nc,neg\nd,pos\n"),
        };
        var e = Assert.Throws<DataFormatException>(() => TextClassificationData.Load(files, "text", "label", seed: 1));
        Assert.Contains("validation.csv", e.Message);
        Assert.Contains("mixes class ids and class names", e.Message);
    }

    [Fact]
    public void SurroundingSpacesSpelledOneWayAreTrimmed()
    {
        var files = new Dictionary<string, string> { ["train"] = Write("train.csv", "text,label\na, pos\nb, neg\nc, pos\nd, neg\n") };
        var data = TextClassificationData.Load(files, "text", "label", seed: 1, validationFraction: 0);
        Assert.Equal(new[] { "neg", "pos" }, data.LabelNames);
    }

    /// <summary>Random corruption of valid files: each either reads or fails with DataFormatException, never another exception.</summary>
    [Theory]
    [InlineData("train.csv", "text,label\n\"a, \"\"b\"\"\",pos\nplain text,neg\n\"multi\nline\",pos\n")]
    [InlineData("train.tsv", "text\tlabel\nsay \"hi\t1\nplain\t0\n")]
    [InlineData("train.jsonl", "{\"text\": \"a \\u00e9\", \"label\": 1}\n{\"text\": \"b\", \"label\": 0}\n")]
    public void CorruptedFilesFailOnlyWithDataFormatException(string name, string content)
    {
        var rng = new Random(5);
        var original = System.Text.Encoding.UTF8.GetBytes(content);
        var path = Path.Combine(TempDir(), name);
        byte[] alphabet = "\"',\t\n\r{}[]:\\ 0123456789-.eNaul"u8.ToArray();
        for (int trial = 0; trial < 400; trial++)
        {
            var bytes = original.ToList();
            for (int k = rng.Next(1, 4); k > 0; k--)
            {
                int at = rng.Next(bytes.Count + 1);
                switch (rng.Next(3))
                {
                    case 0 when at < bytes.Count: bytes.RemoveAt(at); break;
                    case 1 when at < bytes.Count: bytes[at] = rng.Next(4) == 0 ? (byte)rng.Next(256) : alphabet[rng.Next(alphabet.Length)]; break;
                    default: bytes.Insert(at, alphabet[rng.Next(alphabet.Length)]); break;
                }
            }
            File.WriteAllBytes(path, bytes.ToArray());
            try { TextClassificationData.Load(new Dictionary<string, string> { ["train"] = path }, "text", "label", seed: 1, validationFraction: 0); }
            catch (DataFormatException e) { Assert.Contains(path, e.Message); }
        }
    }

    /// <summary>Random corruption of a real parquet file (mostly its footer, where the schema and offsets are):
    /// Parquet.Net throws many exception types for these, all of which must become DataFormatException.</summary>
    [Fact]
    public void CorruptedParquetFailsOnlyWithDataFormatException()
    {
        var original = File.ReadAllBytes(Path.Combine(SharedDir, "hf", "datasets", "cornell-movie-review-data", "rotten_tomatoes", "resolve", "main", "validation.parquet"));
        var path = Path.Combine(TempDir(), "validation.parquet");
        var rng = new Random(1);
        for (int trial = 0; trial < 200; trial++)
        {
            var bytes = (byte[])original.Clone();
            for (int k = rng.Next(1, 5); k > 0; k--)
            {
                int at = rng.Next(3) == 0 ? rng.Next(bytes.Length) : bytes.Length - 1 - rng.Next(Math.Min(4000, bytes.Length));
                bytes[at] = (byte)rng.Next(256);
            }
            File.WriteAllBytes(path, bytes);
            try { TextTable.Read(path, "text", "label"); }
            catch (DataFormatException e) { Assert.Contains(path, e.Message); }
        }
    }
    /// <summary>Found by fuzzing (tests/fuzz/findings/parquet): a footer whose final stop byte is changed never
    /// ends, and Parquet.Net 6.1.0 then reads past it forever. It must be refused, and promptly.</summary>
    [Fact]
    public async Task ParquetFooterThatNeverEndsIsRefusedInsteadOfHanging()
    {
        var path = Path.Combine(TempDir(), "train.parquet");
        await WriteSmallParquet(path);
        var bytes = File.ReadAllBytes(path);
        int lastFooterByte = bytes.Length - 9; // before the footer length (4 bytes) and "PAR1"
        Assert.Equal(0, bytes[lastFooterByte]); // FileMetaData's stop byte
        bytes[lastFooterByte] = 0x04; // now a field header whose id follows, past the footer's end
        File.WriteAllBytes(path, bytes);

        var read = Task.Run(() => TextTable.Read(path, "text", "label"));
        Assert.True(await Task.WhenAny(read, Task.Delay(TimeSpan.FromSeconds(30))) == read, "TextTable.Read still running after 30 s");
        var e = await Assert.ThrowsAsync<DataFormatException>(() => read);
        Assert.Contains(path, e.Message);
        Assert.Contains("footer", e.Message);
    }

    private static async Task WriteSmallParquet(string path)
    {
        var schema = new Parquet.Schema.ParquetSchema(new Parquet.Schema.DataField<string>("text"), new Parquet.Schema.DataField<long>("label"));
        await using var file = File.Create(path);
        await using var writer = await Parquet.ParquetWriter.CreateAsync(schema, file);
        using var group = writer.CreateRowGroup();
        await group.WriteAsync(schema.DataFields[0], new[] { "good", "bad" });
        await group.WriteAsync(schema.DataFields[1], new ReadOnlyMemory<long>([1, 0]));
    }

    /// <summary>Found by fuzzing (tests/fuzz/findings/parquet/footer-parse-goes-astray-1.parquet): a footer that is
    /// well-formed Thrift but that Parquet.Net 6.1.0 misparses (skipping a field of an unexpected type) until it
    /// reads past the end and loops forever. It must be refused within the footer time limit (10 s), not hang.</summary>
    /// <remarks>Run through the real CLI in a child process: the refused read leaves Parquet.Net's loop
    /// spinning on a background thread until the process ends, which in the test host would take a
    /// core from every test after this one.</remarks>
    [Fact]
    public void ParquetFooterThatParquetNetMisparsesIsRefusedWithinTheTimeLimit()
    {
        var path = Path.Combine(TempDir(), "train.parquet");
        File.WriteAllBytes(path, Convert.FromBase64String(FooterParseGoesAstray));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var r = Cli.Run(new Dictionary<string, string?> { ["HF_HUB_OFFLINE"] = "1" },
            "eval", "--checkpoint", TestSupport.MiniLmDir, "--dataset", path, "--split", "train");
        Assert.True(r.ExitCode == 2, $"exit {r.ExitCode}:\n{r.All}");
        Assert.Contains(path, r.Stderr);
        Assert.Contains("footer", r.Stderr);
        Assert.InRange(clock.Elapsed.TotalSeconds, 0, 90);
    }

    private const string FooterParseGoesAstray =
        "UEFSMRUAFToVPiwVBhUAFQYVBhwYBGdvb2QYA2JhZBYAKARnb29kGANiYWQAAAAdcAIAAAAGAQQAAABnb29kAwAAAGJhZAQAAABm" +
        "aW5lFQAVMBUgLBUGFQAVBhUGHBgIAAAAAAAAAAAAAAAYBAEANgEAHDwAAAAAAAAAFQIZPEgEcm9vdBUEABUMJQIYBHRleHQlAEwc" +
        "AAAAFQQlABgFbGFiZWwlJEysE0ARAAAAFgYZHBksJggcFQwZJQAGGRgEdGV4dBUCFgYWkAEWlAEmCDwYBGdvb2QWA2JhZBYAKARn" +
        "b29kGANiYWQAAAAmnAEcFQQZJQAGGRgFbGFiZWwVAhYGFqoBFpoBJpwBPBgIAQAAAAAAAAAYCBwAAAAAAAAAFgAoCAEAAAAAAAAA" +
        "GAgAAAAAAAAAAAAAABa6AhYGNq4CABkcGAsBAGdnaW5nZmFjZRhTeyJpbmZvIjogeyJmZWF0dXJlcyI6IHsibGFiZWwiOiB7Im5h" +
        "kGVzIjogWwVuZWciLCAicG9zIl0sICJfdHlwZSI6ICJDbGH6AAD6YmVsIn19EH0AGEpQYXJxdWV0Lk5ldCB2ZXJzaW9uIDYuMS4w" +
        "IChidWlsZCBjMTc5ZDk3YmQyNTQ5YjVmNDRhOTI0MWU3MjmEODY5ZDQ5NDdlZTU5KQF5AQAAUEFSMQ==";

    /// <summary>What a run silently did before: a stray label id made classes that nothing trains (macro F1 averaged
    /// over them), and --max-length past the model's positions was cut to them.</summary>
    [Fact]
    public void ClassesWithoutTrainExamplesAndAMaxLengthPastThePositionsAreSaid()
    {
        string dir = TempDir();
        File.WriteAllText(Path.Combine(dir, "train.csv"), "text,label\n" + string.Concat(Enumerable.Range(0, 20).Select(i => $"text {i},{(i == 7 ? 7 : i % 2)}\n")));
        var said = new List<string>();
        using var hub = new HubClient(new HubSettings("http://127.0.0.1:9", TempDir(), true, null));
        var prepared = FineTuning.Prepare(new RunInputs(Cli.TinyModelRepo(TempDir()), dir), new TrainOptions { MaxLength = 100 }, hub, said.Add);
        Assert.Equal(8, prepared.Data.LabelNames.Length);
        Assert.Contains("warning: 5 of the 8 classes have no train example (2, 3, 4, 5, 6): the model still gets an output for each, and macro F1 averages over them", said);
        Assert.Contains("warning: --max-length 100 is more than the model's max_position_embeddings: sequences are truncated at 64", said);
        // counted on the examples trained on: --train-size 4 leaves the one example of class 7 out
        said.Clear();
        FineTuning.Prepare(new RunInputs(Cli.TinyModelRepo(TempDir()), dir), new TrainOptions { TrainSize = 4 }, hub, said.Add);
        Assert.Contains("warning: 6 of the 8 classes have no train example (2, 3, 4, 5, 6, 7): the model still gets an output for each, and macro F1 averages over them", said);
    }

    /// <summary>A .json file holding one array of objects, as `datasets`' json builder reads it beside JSON Lines
    /// (it was refused: "line 1 is not a JSON object").</summary>
    [Fact]
    public void AJsonArrayFileIsReadRowByRow()
    {
        var raw = TextTable.Read(Write("train.json", "[\n  {\"text\": \"a\", \"label\": 1},\n  {\"text\": \"b\", \"label\": 0}\n]\n"), "text", "label");
        Assert.Equal(["a", "b"], raw.Texts);
        Assert.Equal(["1", "0"], raw.Labels.Select(l => l!));
        var e = Assert.Throws<DataFormatException>(() => TextTable.Read(Write("train.json", "[{\"text\": \"a\", \"label\": 1}, 7]"), "text", "label"));
        Assert.Contains("train.json: row 1 is not a JSON object", e.Message);
        e = Assert.Throws<DataFormatException>(() => TextTable.Read(Write("train.json", "[{\"text\": \"a\", \"label\": 1}, {\"text\": \"b\", \"label\": \"pos\"}]"), "text", "label"));
        Assert.Contains("mixes numbers (first on row 0) and strings (first on row 1)", e.Message);
        e = Assert.Throws<DataFormatException>(() => TextTable.Read(Write("train.json", "[{\"text\": \"a\", \"label\": 1},"), "text", "label"));
        Assert.Contains("train.json: a JSON array that is not valid JSON", e.Message);
    }

    /// <summary>Gzipped text files (train.jsonl.gz, test.csv.gz), as `datasets` reads them by their names: the
    /// format under the .gz, the splits by name as for any file.</summary>
    [Fact]
    public void GzippedFilesAreReadAsTheirInnerFormat()
    {
        string dir = TempDir();
        void Gzip(string name, string content)
        {
            using var gz = new System.IO.Compression.GZipStream(File.Create(Path.Combine(dir, name)), System.IO.Compression.CompressionLevel.Optimal);
            gz.Write(System.Text.Encoding.UTF8.GetBytes(content));
        }
        Gzip("train.jsonl.gz", string.Concat(Enumerable.Range(0, 8).Select(i => $"{{\"text\": \"t{i}\", \"label\": {i % 2}}}\n")));
        Gzip("test.csv.gz", "text,label\nu0,0\nu1,1\n");
        var raw = TextTable.Read(Path.Combine(dir, "test.csv.gz"), "text", "label");
        Assert.Equal(["u0", "u1"], raw.Texts);
        using var hub = new HubClient(new HubSettings("http://127.0.0.1:9", TempDir(), true, null));
        var files = Sources.ResolveDataset(dir, hub);
        Assert.Equal([Path.Combine(dir, "train.jsonl.gz")], files["train"]);
        Assert.Equal([Path.Combine(dir, "test.csv.gz")], files["test"]);
        var data = TextClassificationData.Load(files, "text", "label", seed: 1);
        Assert.Equal((8, 2), (data.Train.Count + data.Validation.Count, data.Test!.Count));
        // cut short (a broken download): GZipStream ends quietly there; the trailer's length says so
        byte[] whole = File.ReadAllBytes(Path.Combine(dir, "train.jsonl.gz"));
        foreach (int cut in new[] { 4, 9, whole.Length / 2 })
        {
            File.WriteAllBytes(Path.Combine(dir, "cut.jsonl.gz"), whole[..^cut]);
            var e = Assert.Throws<DataFormatException>(() => TextTable.Read(Path.Combine(dir, "cut.jsonl.gz"), "text", "label"));
            Assert.Contains("cut.jsonl.gz: ", e.Message);
        }
        File.WriteAllBytes(Path.Combine(dir, "cut.jsonl.gz"), whole[..^4]);
        Assert.Contains("the gzip file ends early", Assert.Throws<DataFormatException>(() => TextTable.Read(Path.Combine(dir, "cut.jsonl.gz"), "text", "label")).Message);
        File.WriteAllText(Path.Combine(dir, "bad.jsonl.gz"), "not gzip");
        Assert.Contains("bad.jsonl.gz: not a readable gzip file", Assert.Throws<DataFormatException>(() => TextTable.Read(Path.Combine(dir, "bad.jsonl.gz"), "text", "label")).Message);
        File.WriteAllText(Path.Combine(dir, "x.parquet.gz"), "");
        Assert.Contains("a gzipped parquet file", Assert.Throws<DataFormatException>(() => TextTable.Read(Path.Combine(dir, "x.parquet.gz"), "text", "label")).Message);
    }

    /// <summary>A run's local input read again (eval, --resume): where it is named, else where the run recorded it,
    /// never the Hub repository of the same name; and an alias is the same input only between Hub ids.</summary>
    [Fact]
    public void ARecordedLocalInputIsFoundOrSaidGoneNeverTakenFromTheHub()
    {
        string here = TempDir(), gone = Path.Combine(TempDir(), "rotten_tomatoes");
        Assert.Equal("org/name", Sources.Recorded("org/name", null));
        Assert.Equal(here, Sources.Recorded("no-such-folder-here", here));
        var e = Assert.Throws<HubException>(() => Sources.Recorded("rotten_tomatoes", gone));
        Assert.Equal($"the run's local 'rotten_tomatoes' is neither here nor at {gone}, where it was when the run started: put it back there (eval also takes --dataset)", e.Message);
        string local = Path.Combine(TempDir(), "rotten_tomatoes");
        Directory.CreateDirectory(local);
        Assert.False(Sources.SameInput(local, "cornell-movie-review-data/rotten_tomatoes"));
        Assert.True(Sources.SameInput(local, local + "/"));
        Assert.True(Sources.SameInput("rotten_tomatoes", "cornell-movie-review-data/rotten_tomatoes")); // no such folder where the tests run
    }
}

