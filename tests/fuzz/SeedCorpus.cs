using System.Text;
using MixupBert.Model.Bert;
using Parquet;
using Parquet.Schema;

namespace MixupBert.Fuzz;

/// <summary>
/// Writes the seed corpus: one or two small valid inputs per target, made by the project's own writers
/// where it has them, so that afl-fuzz starts from files the parsers accept. The output is committed
/// under tests/fuzz/corpus/; this code documents how it was made.
/// </summary>
public static class SeedCorpus
{
    public static void Write(string root)
    {
        string dir(string target) => Directory.CreateDirectory(Path.Combine(root, target)).FullName;

        var model = Directory.CreateTempSubdirectory("mixup-seed-").FullName;
        BertCheckpoint.Save(model, Targets.TinyConfig(), BertCheckpoint.RandomInit(Targets.TinyConfig(), seed: 1));
        File.Copy(Path.Combine(model, BertCheckpoint.WeightsFile), Path.Combine(dir("safetensors"), "tiny-f32.safetensors"), true);
        File.Copy(Path.Combine(model, BertCheckpoint.ConfigFile), Path.Combine(dir("config"), "tiny-config.json"), true);
        BertCheckpoint.Save(model, Targets.TinyConfig(), BertCheckpoint.RandomInit(Targets.TinyConfig(), seed: 2), dtype: "BF16");
        File.Copy(Path.Combine(model, BertCheckpoint.WeightsFile), Path.Combine(dir("safetensors"), "tiny-bf16.safetensors"), true);
        Directory.Delete(model, true);
        File.WriteAllText(Path.Combine(dir("config"), "bert-base.json"),
            """{"architectures": ["BertForMaskedLM"], "model_type": "bert", "hidden_size": 768, "num_attention_heads": 12, "pad_token_id": null, "classifier_dropout": null, "id2label": {"0": "neg", "1": "pos"}, "layer_norm_eps": 1e-12}""");

        string vocab = string.Join("\n", "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", ",", "world", "!", "wo", "##rld", "中", "naive", "##s") + "\n";
        File.WriteAllBytes(Path.Combine(dir("tokenizer"), "lower.bin"),
            Parts("""{"do_lower_case": true, "strip_accents": null, "tokenize_chinese_chars": true}""", vocab, "Hello, Wörlds! 中文 naïve"));
        File.WriteAllBytes(Path.Combine(dir("tokenizer"), "cased.bin"),
            Parts("""{"do_lower_case": false, "strip_accents": false}""", vocab, "hello world"));

        File.WriteAllText(Path.Combine(dir("csv"), "quoted.csv"), "text,label\n\"a, \"\"quoted\"\" text\",pos\nplain text,neg\n\"two\nlines\",pos\n");
        File.WriteAllText(Path.Combine(dir("tsv"), "ids.tsv"), "text\tlabel\nhello world\t0\na \"quote\" inside\t1\n");
        File.WriteAllText(Path.Combine(dir("jsonl"), "ids.jsonl"), "{\"text\": \"good film\", \"label\": 1}\n{\"text\": \"bad\", \"label\": 0}\n");
        File.WriteAllText(Path.Combine(dir("jsonl"), "names.jsonl"), "{\"text\": \"good\", \"label\": \"pos\"}\n\n{\"label\": \"neg\", \"text\": \"bad \\u00e9\"}\n");
        WriteParquet(Path.Combine(dir("parquet"), "ids.parquet")).GetAwaiter().GetResult();
    }

    private static byte[] Parts(params string[] parts) =>
        Encoding.UTF8.GetBytes(string.Join((char)Targets.PartSeparator, parts));

    /// <summary>Three rows with integer labels and the ClassLabel names that Hugging Face datasets writes as metadata.</summary>
    private static async Task WriteParquet(string path)
    {
        var schema = new ParquetSchema(new DataField<string>("text"), new DataField<long>("label"));
        await using var file = File.Create(path);
        await using var writer = await ParquetWriter.CreateAsync(schema, file);
        writer.CustomMetadata = new Dictionary<string, string>
        {
            ["huggingface"] = """{"info": {"features": {"label": {"names": ["neg", "pos"], "_type": "ClassLabel"}}}}""",
        };
        using var group = writer.CreateRowGroup();
        await group.WriteAsync(schema.DataFields[0], new[] { "good", "bad", "fine" });
        await group.WriteAsync(schema.DataFields[1], new ReadOnlyMemory<long>([1, 0, 1]));
    }
}
