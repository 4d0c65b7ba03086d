using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using MixupBert.Kernels.Cuda;
using MixupBert.Model.Bert;
using MixupBert.Model.Training;
using MixupBert.Model.Weights;

namespace MixupBert.Tool.Commands;

/// <summary>
/// `mixup-bert bench`: training-step and inference throughput of a model shape on a backend, for
/// each mixup mode in the same process, steps interleaved (so their ratio is a fair one), as
/// samples/s, tokens/s and FLOP/s (<see cref="BertFlops"/>), medians and spreads of timed steps after
/// warm-up steps; on the CPU also as a share of the machine's FMA peak, measured in the same run.
/// </summary>
public static class BenchCommand
{
    public static Command Build()
    {
        var model = new Option<string>("--model") { Description = "A model folder (config.json + model.safetensors) or a config.json file", Required = true };
        var randomInit = new Option<bool>("--random-init") { Description = "Random weights from the config (speed does not depend on the values)" };
        var batchSize = new Option<int>("--batch-size") { Description = "Examples per step", DefaultValueFactory = _ => 32 };
        var seqLen = new Option<int>("--seq-len") { Description = "Tokens per example (every token real: no padding)", DefaultValueFactory = _ => 128 };
        var modes = new Option<string>("--mode") { Description = "Comma-separated modes to time: baseline, mixup, tmix, senmix, ssmix", DefaultValueFactory = _ => "baseline,mixup" };
        var backend = new Option<string>("--backend") { Description = "auto, cpu or cuda", DefaultValueFactory = _ => "auto" };
        var steps = new Option<int>("--steps") { Description = "Timed steps per mode", DefaultValueFactory = _ => 10 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed steps first", DefaultValueFactory = _ => 3 };
        var precision = new Option<string>("--precision") { Description = Backends.PrecisionHelp, DefaultValueFactory = _ => "auto" };
        precision.AcceptOnlyFromAmong("auto", "fp32", "tf32", "bf16");
        var threads = new Option<int>("--threads") { Description = "CPU worker threads (default: all cores)" };
        var json = new Option<string?>("--json") { Description = "Also write the results to this JSON file" };
        var attention = new Option<string>("--attention-kernels")
        {
            Description = "bf16 on a GPU: the fused attention's tensor-core kernels, mma-sync (FlashAttention-2's structure, the default) or wmma (the first set, slower; for comparison)",
            DefaultValueFactory = _ => "mma-sync",
        };
        attention.AcceptOnlyFromAmong("wmma", "mma-sync");
        var cmd = new Command("bench", "Measure training and inference throughput") { model, randomInit, batchSize, seqLen, modes, backend, steps, warmup, precision, threads, json, attention };
        cmd.SetAction(parse =>
        {
            try
            {
                if (parse.GetValue(threads) is int t && t > 0) Kernels.Cpu.WorkerPool.ConfigureShared(t);
                return Run(parse.GetValue(model)!, parse.GetValue(randomInit), parse.GetValue(batchSize), parse.GetValue(seqLen),
                    parse.GetValue(modes)!, parse.GetValue(backend)!, parse.GetValue(steps), parse.GetValue(warmup), parse.GetValue(precision)!, parse.GetValue(json),
                    parse.GetValue(attention) == "wmma" ? TensorCoreKernels.Wmma : TensorCoreKernels.MmaSync);
            }
            catch (Exception e) when (e is ModelFormatException or CudaUnavailableException or ArgumentException)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return e is CudaUnavailableException ? ErrorReport.NoDevice : ErrorReport.BadInput;
            }
        });
        return cmd;
    }

    private static int Run(string modelPath, bool randomInit, int batch, int seqLen, string modeList, string backend, int steps, int warmup, string precision, string? jsonPath,
        TensorCoreKernels attention)
    {
        if (steps < 1) throw new ArgumentException($"--steps must be at least 1, not {steps}");
        if (warmup < 0) throw new ArgumentException($"--warmup must be at least 0, not {warmup}");
        if (batch is < 1 or > 1 << 16) throw new ArgumentException($"--batch-size must be in 1..65536, not {batch}");
        if (seqLen < 1) throw new ArgumentException($"--seq-len must be at least 1, not {seqLen}");
        BertConfig config;
        float[] parameters;
        if (File.Exists(modelPath) && modelPath.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            config = BertConfig.Load(modelPath);
            parameters = BertCheckpoint.RandomInit(config, 1);
        }
        else if (randomInit)
        {
            config = BertConfig.Load(Path.Combine(modelPath, BertCheckpoint.ConfigFile));
            parameters = BertCheckpoint.RandomInit(config, 1);
        }
        else (config, parameters, _) = BertCheckpoint.Load(modelPath);
        if (seqLen > config.MaxPositionEmbeddings) throw new ArgumentException($"--seq-len {seqLen} exceeds max_position_embeddings {config.MaxPositionEmbeddings}");
        var modeNames = modeList.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var (engine, why) = Backends.Create(backend, config, parameters, precision);
        using var _engine = engine;
        if (engine is GpuBertEngine gpuEngine) gpuEngine.AttentionTensorCores = attention;
        Console.WriteLine($"backend: {engine.Backend} ({why})");
        string? attentionKernels = engine is GpuBertEngine { Backend: var described } && described.EndsWith("bf16)", StringComparison.Ordinal) ? (attention == TensorCoreKernels.MmaSync ? "mma-sync" : "wmma") : null;
        if (attentionKernels != null) Console.WriteLine($"attention tensor-core kernels: {attentionKernels}");
        // the ISA path that ran: on a machine without AVX-512 (or with it switched off) the figures
        // are those of another micro-kernel and are not comparable with AVX-512 ones
        string? isaPath = engine is CpuBertEngine ? $"GEMM micro-kernel {Kernels.Cpu.Gemm.MicroKernel}; caches {Kernels.Cpu.CacheSizes.OfThisMachine}; GEMM blocking {Kernels.Cpu.Gemm.Blocking}" : null;
        if (isaPath != null) Console.WriteLine($"cpu path: {isaPath}");
        bool random = randomInit || File.Exists(modelPath);
        Console.WriteLine($"model: {config.NumHiddenLayers} layers, hidden {config.HiddenSize}, heads {config.NumAttentionHeads}, intermediate {config.IntermediateSize}; batch {batch} × {seqLen} tokens" +
            (random ? "; random weights (the speed does not depend on them)" : ""));

        var rng = new Random(7);
        var ids = Enumerable.Range(0, batch * seqLen).Select(_ => rng.Next(config.VocabSize)).ToArray();
        var b = new Batch(seqLen, config.NumLabels, ids, Enumerable.Repeat(1f, batch * seqLen).ToArray(),
            Enumerable.Range(0, batch).Select(i => i % config.NumLabels).ToArray());
        var probs = new float[batch * config.NumLabels];
        double flopsTrain = BertFlops.TrainingStep(config, batch, seqLen), flopsInfer = BertFlops.Forward(config, batch, seqLen);

        // The modes' steps are interleaved (one step of each mode per round, the order rotated every
        // round), so that a slow stretch of a shared machine, or warm-up, falls on every mode alike
        // and their ratio stays fair.
        var modes = modeNames.Select(name => name switch
        {
            "baseline" => MixMode.Baseline, "mixup" => MixMode.Mixup, "tmix" => MixMode.TMix, "senmix" => MixMode.SenMix, "ssmix" => MixMode.SsMix,
            _ => throw new ArgumentException($"unknown mode '{name}' (baseline, mixup, tmix, senmix, ssmix)"),
        }).ToArray();
        var samplers = modes.Select(m => new MixSampler(m, tmixLayers: MixSampler.DefaultTMixLayers(config.NumHiddenLayers))).ToArray();
        var times = modes.Select(_ => new List<double>()).ToArray();
        var inferTimes = new List<double>();
        long step = 0;
        long gpuMemory = 0; // the driver's figure (cuMemGetInfo), its highest after any round
        for (int round = 0; round < warmup + steps; round++)
        {
            for (int j = 0; j < modes.Length; j++)
            {
                int m = (j + round) % modes.Length;
                var mix = samplers[m].Sample(batch, rng);
                var sw = Stopwatch.StartNew();
                var stepBatch = b;
                // ssmix's step, timed whole: the saliency pass, the spans, the step on the unmixed and mixed rows
                if (BertSchedule.MixesTokens(mix)) (stepBatch, mix) = SpanMix.Apply(engine, b, mix!, SpanMix.DefaultSpan, 1, step + 1);
                engine.TrainStep(stepBatch, mix, 1e-5f, ++step, 1, new OptimizerSettings());
                if (round >= warmup) times[m].Add(sw.Elapsed.TotalSeconds);
            }
            var swi = Stopwatch.StartNew();
            engine.Evaluate(b, probs);
            if (round >= warmup) inferTimes.Add(swi.Elapsed.TotalSeconds);
            if (engine is GpuBertEngine { Gpu: CudaGpu cuda }) gpuMemory = Math.Max(gpuMemory, cuda.DriverMemoryUsed());
        }
        var results = new List<Dictionary<string, object>>();
        // FLOPs per step: ssmix's saliency pass is a forward and backward of the batch, its step one of twice the batch
        for (int m = 0; m < modes.Length; m++)
            results.Add(Summarise($"train {modeNames[m]}", times[m], batch, seqLen, modes[m] == MixMode.SsMix
                ? BertFlops.TrainingStep(config, batch, seqLen) + BertFlops.TrainingStep(config, 2 * batch, seqLen) : flopsTrain));
        if (modes.Contains(MixMode.Baseline))
            results.Add(Summarise("train baseline pipelined", PipelinedStepTimes(engine, b, warmup, steps, ref step), batch, seqLen, flopsTrain));
        results.Add(Summarise("inference", inferTimes, batch, seqLen, flopsInfer));

        // on the CPU, the share of the machine's measured FMA peak (Kernels.Cpu.MachinePeak)
        double? peak = engine is CpuBertEngine ? Kernels.Cpu.MachinePeak.FmaGflops(Kernels.Cpu.WorkerPool.Shared) : null;
        Console.WriteLine();
        Console.WriteLine($"{"case",-25} {"median s/step",14} {"min..max",18} {"samples/s",10} {"tokens/s",10} {"GFLOP/s",10}{(peak != null ? $" {"of peak",8}" : "")}");
        foreach (var r in results)
        {
            double gflops = (double)r["gflops"];
            string share = peak is double p ? $" {gflops / p * 100,7:F1}%" : "";
            Console.WriteLine($"{r["case"],-25} {(double)r["median_s"],14:F4} {$"{(double)r["min_s"]:F4}..{(double)r["max_s"]:F4}",18} {(double)r["samples_per_s"],10:F1} {(double)r["tokens_per_s"],10:F0} {gflops,10:F1}{share}");
        }
        if (peak != null) Console.WriteLine($"FMA peak of this machine ({Kernels.Cpu.MachinePeak.Describe()}), measured now on {Kernels.Cpu.WorkerPool.Shared.WorkerCount} threads: {peak:F1} GFLOP/s");
        var baseline = results.FirstOrDefault(r => (string)r["case"] == "train baseline");
        var pipelined = results.FirstOrDefault(r => (string)r["case"] == "train baseline pipelined");
        if (baseline != null)
        {
            foreach (var r in results.Where(r => ((string)r["case"]).StartsWith("train ") && r != baseline && r != pipelined))
                Console.WriteLine($"overhead of {((string)r["case"])[6..]} over baseline: {((double)r["median_s"] / (double)baseline["median_s"] - 1) * 100:F1}% (median step time ratio)");
            if (pipelined != null)
                Console.WriteLine($"pipelined (the next step queued before a loss is read back, as the trainer runs) against one step at a time: " +
                    $"{((double)pipelined["median_s"] / (double)baseline["median_s"] - 1) * 100:F1}% (median step time ratio)");
        }
        long hostPeak = Process.GetCurrentProcess().PeakWorkingSet64;
        if (gpuMemory > 0) Console.WriteLine($"GPU memory in use (the driver's cuMemGetInfo, all processes, as nvidia-smi counts): {gpuMemory / (1 << 20)} MiB at its highest");
        Console.WriteLine($"peak working set of this process (host memory): {hostPeak / (1 << 20)} MiB");
        if (jsonPath != null)
        {
            var list = new JsonArray();
            foreach (var r in results)
            {
                var o = new JsonObject();
                foreach (var (key, value) in r) o[key] = value is string str ? JsonValue.Create(str) : value is int n ? JsonValue.Create(n) : JsonValue.Create((double)value);
                list.Add((JsonNode)o);
            }
            var doc = new JsonObject
            {
                ["backend"] = engine.Backend, ["attention_kernels"] = attentionKernels, ["batch"] = batch, ["seq_len"] = seqLen, ["layers"] = config.NumHiddenLayers,
                ["hidden"] = config.HiddenSize, ["precision"] = precision, ["results"] = list,
                ["gpu_memory_used_mib"] = gpuMemory > 0 ? gpuMemory / (1 << 20) : null, ["host_peak_working_set_mib"] = hostPeak / (1 << 20),
                ["threads"] = Kernels.Cpu.WorkerPool.Shared.WorkerCount, ["cpu_fma_peak_gflops"] = peak,
                ["cpu_gemm_micro_kernel"] = engine is CpuBertEngine ? Kernels.Cpu.Gemm.MicroKernel : null,
                ["cpu_fma_peak_loop"] = engine is CpuBertEngine ? Kernels.Cpu.MachinePeak.Describe() : null,
            };
            File.WriteAllText(jsonPath, doc.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }
        return ErrorReport.Ok;
    }

    /// <summary>Baseline steps as the trainer runs them: step n + 1 is queued before step n's loss is read
    /// back (<see cref="IBertEngine.StartTrainStep"/>), so on a GPU the host never waits for a step before
    /// launching the next. A step's time is the interval between two read-backs. On the CPU, where a step
    /// runs as it starts, the same as one at a time.</summary>
    private static List<double> PipelinedStepTimes(IBertEngine engine, Batch b, int warmup, int steps, ref long step)
    {
        var times = new List<double>();
        var settings = new OptimizerSettings();
        engine.StartTrainStep(b, null, 1e-5f, ++step, 1, settings);
        var sw = Stopwatch.StartNew();
        double last = 0;
        for (int i = 0; i < warmup + steps; i++)
        {
            engine.StartTrainStep(b, null, 1e-5f, ++step, 1, settings);
            engine.FinishTrainStep();
            double now = sw.Elapsed.TotalSeconds;
            if (i >= warmup) times.Add(now - last);
            last = now;
        }
        engine.FinishTrainStep();
        return times;
    }

    private static Dictionary<string, object> Summarise(string name, List<double> times, int batch, int seqLen, double flops)
    {
        var sorted = times.OrderBy(t => t).ToArray();
        double median = sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
        return new Dictionary<string, object>
        {
            ["case"] = name, ["steps"] = sorted.Length, ["median_s"] = median, ["min_s"] = sorted[0], ["max_s"] = sorted[^1],
            ["samples_per_s"] = batch / median, ["tokens_per_s"] = batch * seqLen / median,
            ["gflops"] = flops / median / 1e9, ["tflops"] = flops / median / 1e12,
        };
    }
}
