using System.Text;
using MixupBert.Model.Bert;
using MixupBert.Model.Data;
using MixupBert.Model.Weights;

namespace MixupBert.Fuzz;

/// <summary>
/// One target per parser. Each writes the fuzz input where the parser reads it and calls the parser's
/// public entry point, catching only the project's format exceptions: any other exception is a finding
/// (afl-fuzz records it as a crash), as are hangs and huge allocations.
/// </summary>
public static class Targets
{
    public static readonly IReadOnlyDictionary<string, Action<Stream>> All = new Dictionary<string, Action<Stream>>
    {
        ["safetensors"] = SafeTensors,
        ["config"] = Config,
        ["tokenizer"] = Tokenizer,
        ["csv"] = input => Data(input, ".csv"),
        ["tsv"] = input => Data(input, ".tsv"),
        ["jsonl"] = input => Data(input, ".jsonl"),
        ["parquet"] = input => Data(input, ".parquet"),
    };

    /// <summary>The config the safetensors target loads weights against; the seed is BertCheckpoint.Save of it.
    /// Made on use, not in a static initialiser: instrumented code must not run before SharpFuzz has set up
    /// afl's shared memory (it fails with an AccessViolationException).</summary>
    public static BertConfig TinyConfig() => new()
    {
        VocabSize = 16, HiddenSize = 4, NumHiddenLayers = 1, NumAttentionHeads = 2, IntermediateSize = 8,
        MaxPositionEmbeddings = 8, TypeVocabSize = 2, Id2Label = ["neg", "pos"],
    };

    /// <summary>Separates the parts of a tokenizer input: tokenizer_config.json, vocab.txt, a text to encode.</summary>
    public const byte PartSeparator = 0;

    /// <summary>A folder per process, reused for every input (afl runs thousands per second through one process).</summary>
    private static readonly string Work = Directory.CreateTempSubdirectory("mixup-fuzz-").FullName;

    /// <summary>Set by --repro, to show which inputs were refused (with the project's message) rather than accepted.</summary>
    public static bool ShowRejections { get; set; }

    private static bool Rejected(Exception e)
    {
        if (ShowRejections) Console.WriteLine($"      refused: {e.Message}");
        return true;
    }

    private static string WriteInput(Stream input, string name)
    {
        string path = Path.Combine(Work, name);
        using (var file = File.Create(path)) input.CopyTo(file);
        return path;
    }

    private static void SafeTensors(Stream input)
    {
        string path = WriteInput(input, BertCheckpoint.WeightsFile);
        try
        {
            using var reader = new SafeTensorsReader(path);
            foreach (var t in reader.Tensors.Where(t => t.DType is "F32" or "F16" or "BF16" or "F64"))
                reader.ReadFloat32(t.Name, new float[t.ElementCount]);
            BertCheckpoint.LoadWeights(reader, TinyConfig());
        }
        catch (ModelFormatException e) when (Rejected(e)) { }
    }

    private static void Config(Stream input)
    {
        string path = WriteInput(input, BertCheckpoint.ConfigFile);
        try
        {
            var config = BertConfig.Load(path);
            ModelSize.ActivationBytes(config, 32, config.MaxPositionEmbeddings);
        }
        catch (ModelFormatException e) when (Rejected(e)) { }
    }

    private static void Tokenizer(Stream input)
    {
        var bytes = new MemoryStream();
        input.CopyTo(bytes);
        var parts = Split(bytes.ToArray(), PartSeparator, 3);
        string configPath = Path.Combine(Work, "tokenizer_config.json");
        if (parts[0].Length > 0) File.WriteAllBytes(configPath, parts[0]); else File.Delete(configPath);
        File.WriteAllBytes(Path.Combine(Work, "vocab.txt"), parts.Length > 1 ? parts[1] : []);
        string text = parts.Length > 2 ? Encoding.UTF8.GetString(parts[2]) : "Hello, Wörld! 中文 naïve";
        try
        {
            var encoder = TextEncoder.FromModelFolder(Work);
            encoder.Encode(text, 16);
        }
        catch (DataFormatException e) when (Rejected(e)) { }
    }

    private static void Data(Stream input, string extension)
    {
        foreach (var old in Directory.EnumerateFiles(Work, "train.*")) File.Delete(old);
        string path = WriteInput(input, "train" + extension);
        try
        {
            TextClassificationData.Load(new Dictionary<string, string> { ["train"] = path }, "text", "label", seed: 0);
        }
        catch (DataFormatException e) when (Rejected(e)) { }
    }

    /// <summary>Splits at the first <paramref name="count"/> - 1 separators.</summary>
    public static byte[][] Split(byte[] data, byte separator, int count)
    {
        var parts = new List<byte[]>();
        int start = 0;
        while (parts.Count < count - 1)
        {
            int at = Array.IndexOf(data, separator, start);
            if (at < 0) break;
            parts.Add(data[start..at]);
            start = at + 1;
        }
        parts.Add(data[start..]);
        return parts.ToArray();
    }
}
