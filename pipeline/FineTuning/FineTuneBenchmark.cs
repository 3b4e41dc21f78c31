using Forgetless.Model.Devices;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Forgetless.Configuration;
using Forgetless.Model;
using Forgetless.Peft;
using Forgetless.Training.Terms;
using Forgetless.Training;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.FineTuning;

/// <summary>
/// One measured (model, method) case. <see cref="PeakRssBytes"/> is the whole process's peak (loading included: every
/// model is f32 while it loads); <see cref="TrainingPeakRssBytes"/> the peak while the trainer ran (null where the
/// peak cannot be restarted).
/// </summary>
public sealed record BenchmarkResult(string Model, string Method, int Steps, int TokensPerStep, double SecondsPerStep, double TokensPerSecond,
    double ModelTflopsPerStep, double Mfu, long TrainableParameters, long TotalParameters, long PeakRssBytes, long? TrainingPeakRssBytes,
    long? Nf4Bytes, long? Nf4AsF32Bytes, double BoundSecondsPerStep)
{
    public string ToJson() => JsonSerializer.Serialize(this);
    public static BenchmarkResult FromJson(string json) => JsonSerializer.Deserialize<BenchmarkResult>(json)!;
}

/// <summary>
/// Training throughput of each method. Model FLOPs per step follow the PaLM convention (Chowdhery et al. 2022,
/// appendix B): 6·N·tokens + 12·L·d·T·tokens, N = every weight matrix a token passes through (the layers and the
/// lm_head, tied or not; embeddings lookups excluded), T the sequence length. The same count is used for every
/// method, although frozen weights need no weight gradient (≈ 4·N instead of 6·N), so PEFT methods show a lower
/// MFU for the same speed: the number compares wall time against one yardstick. MFU = model FLOPs/s ÷ the
/// measured f32 matmul peak of this machine (a warm 1024² matmul, the best of 3 medians).
/// </summary>
public static class FineTuneBenchmark
{
    public static IReadOnlyDictionary<string, ModelConfig> Models { get; } = new Dictionary<string, ModelConfig>
    {
        ["base 4L d256"] = ModelConfig.Llama(8192, 256, 4, 4, 4, maxPositions: 512, tieWordEmbeddings: true),
        ["large 8L d512"] = ModelConfig.Llama(8192, 512, 8, 8, 8, maxPositions: 512, tieWordEmbeddings: true),
    };

    /// <summary>Every registered method's cases (<see cref="PeftMethod.BenchmarkCases"/>), by name.</summary>
    public static IReadOnlyDictionary<string, (PeftMethod Method, BenchmarkSetting Setting)> MethodCases { get; } =
        PeftMethods.All.SelectMany(m => m.BenchmarkCases.Select(c => (Method: m, Setting: c))).ToDictionary(c => c.Setting.Name, StringComparer.Ordinal);

    /// <summary>
    /// GFLOP/s of a warm f32 n×n matmul: the best of <paramref name="rounds"/> medians of <paramref name="repeats"/>
    /// products each, after <paramref name="warmups"/>. The first dozen products of a fresh process run at 55–90% of the
    /// rate the rest settle at (measured: 104, 151, 166, … then 190–200 GFLOP/s), and a round can still meet the runtime's
    /// own start-up work (one Benchmark run's parent measured 150 where its children measured 186–189): a low peak
    /// over-states every MFU, so the best round is the yardstick.
    /// </summary>
    public static double MatmulPeakGflops(int n = 1024, int repeats = 15, int warmups = 15, int rounds = 3)
    {
        using var a = randn(n, n);
        using var b = randn(n, n);
        for (int i = 0; i < warmups; i++)
            using (var warm = a.matmul(b)) { }
        double best = 0;
        for (int round = 0; round < rounds; round++)
        {
            var times = new List<double>();
            for (int i = 0; i < repeats; i++)
            {
                var clock = Stopwatch.StartNew();
                using var c = a.matmul(b);
                _ = c.data<float>()[0];
                times.Add(clock.Elapsed.TotalSeconds);
            }
            best = Math.Max(best, 2.0 * n * n * n / Median(times) / 1e9);
        }
        return best;
    }

    /// <summary>Model FLOPs of one training step (see the class remarks).</summary>
    public static double ModelFlops(ModelConfig c, int batch, int seqLen)
    {
        long perLayer = (long)c.HiddenSize * c.NumAttentionHeads * c.HeadDim * 2 + (long)c.HiddenSize * c.NumKeyValueHeads * c.HeadDim * 2
                        + 3L * c.HiddenSize * c.IntermediateSize;
        double n = (double)perLayer * c.NumHiddenLayers + (double)c.HiddenSize * c.VocabSize;
        double tokens = (double)batch * seqLen;
        return 6 * n * tokens + 12.0 * c.NumHiddenLayers * c.HiddenSize * seqLen * tokens;
    }

    /// <summary>
    /// The matmul FLOPs a step of this method cannot avoid: the forward (2·N per token) and the activation gradients
    /// (2·N) of every weight matrix, weight gradients (2·N) only for the trained share of the base weights, and the
    /// attention products (12·L·d·T per token, forward and backward). At the measured matmul peak this is the step's
    /// lower bound: what libtorch would need if everything else (norms, softmax, optimizer, the host) were free.
    /// </summary>
    public static double MatmulBoundFlops(ModelConfig c, int batch, int seqLen, double trainedShare)
    {
        double tokens = (double)batch * seqLen;
        double n = ModelFlops(c, 1, 1) / 6 - 2.0 * c.NumHiddenLayers * c.HiddenSize; // N: ModelFlops' weight count
        return (4 + 2 * Math.Clamp(trainedShare, 0, 1)) * n * tokens + 12.0 * c.NumHiddenLayers * c.HiddenSize * seqLen * tokens;
    }

    /// <summary>
    /// Seconds per batch of forward-only scoring (no gradients; [batch, seqLen] rows of random tokens, logits and
    /// log-softmax over the vocabulary), median of <paramref name="repeats"/> after one warm-up: the work Evaluate does.
    /// </summary>
    public static double MeasureScoring(string modelName, int batch = 8, int seqLen = 256, int repeats = 5)
    {
        using var model = ModelFactory.Create(Models[modelName], 1);
        model.eval();
        using var _ = no_grad();
        using var ids = randint(Models[modelName].VocabSize, [batch, seqLen], dtype: ScalarType.Int64);
        var times = new List<double>();
        for (int i = 0; i <= repeats; i++)
        {
            using var scope = NewDisposeScope();
            var clock = Stopwatch.StartNew();
            nn.functional.log_softmax(model.Forward(ids), -1).sum().item<float>();
            if (i > 0) times.Add(clock.Elapsed.TotalSeconds);
        }
        return Median(times);
    }

    /// <summary>
    /// Cases beyond the plain methods: every registered term's overhead on top of LoRA, or of the method the term needs
    /// (EWC and SI add a penalty over the trainable tensors, SI also its path bookkeeping; KD adds a frozen teacher
    /// forward and a KL on the replay rows; orthogonality runs on O-LoRA).
    /// </summary>
    public static IReadOnlyList<string> TermCases { get; } = TrainingTerms.All.Select(t => t.BenchmarkMethod + "+" + t.Name).ToList();

    public static IEnumerable<string> Cases => MethodCases.Keys.Concat(TermCases);

    /// <summary>
    /// Times <paramref name="steps"/> steps of the real <see cref="Trainer"/> (after one warm-up step) for a case
    /// "method" or "method+term+…", on random tokens with half the rows marked replay (as KD, EWC and SI see them).
    /// The random base model is written to a temporary folder because the terms load it from there, as in a run.
    /// </summary>
    /// <summary>The upper median of timings (sorts them in place).</summary>
    internal static double Median(List<double> seconds)
    {
        seconds.Sort();
        return seconds[seconds.Count / 2];
    }

    /// <summary>Tokens per row of the benchmark's batches.</summary>
    public const int SequenceLength = 256;

    /// <summary>Rows per batch of a model of <see cref="Models"/>: 4 × 256 tokens on base, 2 × 256 on large.</summary>
    public static int BatchOf(string modelName) => modelName.StartsWith("large", StringComparison.Ordinal) ? 2 : 4;

    public static BenchmarkResult Measure(string modelName, string caseName, double peakGflops, int batch = 0, int seqLen = SequenceLength, int steps = 2,
        Placement? placement = null) =>
        Measure(modelName, Models[modelName], caseName, peakGflops, batch > 0 ? batch : BatchOf(modelName), seqLen, steps, placement);

    public static BenchmarkResult Measure(string modelName, ModelConfig config, string caseName, double peakGflops, int batch, int seqLen, int steps,
        Placement? placement = null)
    {
        var parts = caseName.Split('+');
        var (method, setting) = MethodCases.TryGetValue(parts[0], out var found) ? found
            : throw new ArgumentException($"bench: unknown case '{caseName}'; cases: {string.Join(", ", Cases)}");
        var options = PipelineConfig.FromSettings(
        [
            .. setting.Overrides,
            "finetune.method=" + method.Name,
            "finetune.regularizers=[" + string.Join(",", parts.Skip(1)) + "]",
            "finetune.ewc.samples=4", "finetune.si.pathSteps=2",
        ], new Dictionary<string, Type> { ["finetune"] = typeof(FineTuneOptions) }, Directory.GetCurrentDirectory()).Section<FineTuneOptions>("finetune");
        var training = options.Training with
        {
            Steps = steps + 1, WarmupSteps = 0, TokensPerBatch = batch * seqLen, LearningRate = 1e-4,
            EvalEvery = int.MaxValue, CheckpointEvery = int.MaxValue, LogEvery = int.MaxValue, KeepBest = false,
        };
        string scratch = Directory.CreateTempSubdirectory("forgetless-bench-").FullName;
        try
        {
            string baseDirectory = Path.Combine(scratch, "base");
            using (var random = ModelFactory.Create(config, 1)) ModelFolder.Save(random, baseDirectory);
            var rows = RandomRows(config.VocabSize, seqLen, rowCount: batch * 4, seed: 3);
            var replay = rows.Where(r => r.IsReplay).ToList();
            using var tuned = options.Apply(options.LoadBase(baseDirectory, placement ?? Placement.Cpu).Model, seed: 1, placement: placement);
            var terms = TrainingTerms.Compose(options.Regularizers, term => new TermContext
            {
                Tuned = tuned, Options = options.Plugins[term.Name], BaseModelDirectory = baseDirectory, ReplayRows = replay, HeldoutRows = [],
                CacheDirectory = Path.Combine(scratch, "cache"), Logger = NullLogger.Instance, Placement = placement ?? Placement.Cpu,
            });
            try
            {
                var work = Directory.CreateDirectory(Path.Combine(scratch, "work")).FullName;
                long processPeak = PeakMemory.PeakRssBytes();
                // The training peak: what the method holds while it trains, not the load before (every model is f32 while
                // it loads) nor .NET garbage the GC has not collected yet.
                PeakMemory.CollectManagedGarbage();
                bool restarted = PeakMemory.Restart();
                var stepEnds = new List<TimeSpan>();
                var clock = Stopwatch.StartNew();
                var result = new Trainer(training, tuned, new PreparedBatches(rows, training.TokensPerBatch, seed: 1), new LossProbe([], []), terms, NullLogger.Instance)
                    { StageName = "bench", AfterStep = _ => stepEnds.Add(clock.Elapsed) }
                    .Run(work, CancellationToken.None);
                // Every step must have read exactly `batch` rows, or tokens/s and MFU would be charged for work not done.
                if (result.Tokens != (long)training.Steps * batch * seqLen)
                    throw new InvalidOperationException($"bench: the trainer read {result.Tokens} tokens in {training.Steps} steps, expected {batch} rows of {seqLen} per step");
                double seconds = (stepEnds[^1] - stepEnds[0]).TotalSeconds / steps;
                double flops = ModelFlops(config, batch, seqLen);
                var (nf4, f32) = QLora.WeightBytes(tuned.Model);
                return new BenchmarkResult(modelName, caseName, steps, batch * seqLen, seconds, batch * seqLen / seconds, flops / 1e12,
                    flops / seconds / (peakGflops * 1e9), tuned.TrainableParameters, tuned.TotalParameters,
                    Math.Max(processPeak, PeakMemory.PeakRssBytes()), restarted ? PeakMemory.PeakRssBytes() : null, nf4 > 0 ? nf4 : null, nf4 > 0 ? f32 : null,
                    MatmulBoundFlops(config, batch, seqLen, TrainedBaseShare(tuned.TrainableParameters, tuned.TotalParameters)) / (peakGflops * 1e9));
            }
            finally
            {
                foreach (var t in terms) t.Dispose();
            }
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    /// <summary>
    /// The share of the weights that get weight gradients: the trainable share of all parameters, and none when that is
    /// a few percent (PEFT methods: their adapters' own matmuls are that small, and the base weights get none).
    /// </summary>
    private static double TrainedBaseShare(long trainable, long total) =>
        (double)trainable / total is var share && share < 0.05 ? 0 : share;

    /// <summary>Rows of uniformly random tokens, every other one marked replay, all positions scored.</summary>
    private static List<PreparedRow> RandomRows(int vocabSize, int seqLen, int rowCount, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, rowCount).Select(i =>
        {
            var ids = new int[seqLen]; // a row of seqLen tokens: the token budget batch·seqLen then takes exactly `batch` rows
            for (int t = 0; t < ids.Length; t++) ids[t] = random.Next(vocabSize);
            var mask = Enumerable.Repeat(true, ids.Length).ToArray();
            return new PreparedRow(ids, mask, ids.Length, i % 2 == 0 ? "replay" : "task");
        }).ToList();
    }

    /// <summary>The Markdown table of docs/benchmarks/finetune.md.</summary>
    public static string Table(double peakGflops, IReadOnlyList<BenchmarkResult> cases)
    {
        var lines = new List<string>
        {
            string.Create(CultureInfo.InvariantCulture, $"Measured f32 matmul peak (1024², warm, best of 3 medians of 15): **{peakGflops:F1} GFLOP/s**, {torch.get_num_threads()} torch threads."),
            "",
            "| model | method | trainable params | total params | s/step | matmul bound s/step | × bound | tokens/s | model TFLOP/step | MFU | peak RSS | peak RSS training | NF4 weights (vs f32) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        };
        foreach (var c in cases)
        {
            string nf4 = c.Nf4Bytes is { } q ? string.Create(CultureInfo.InvariantCulture, $"{q / 1048576.0:F2} MB ({c.Nf4AsF32Bytes / 1048576.0:F2} MB)") : "";
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"| {c.Model} | {c.Method} | {c.TrainableParameters:N0} | {c.TotalParameters:N0} | {c.SecondsPerStep:F2} | {c.BoundSecondsPerStep:F3} | {c.SecondsPerStep / c.BoundSecondsPerStep:F2} | {c.TokensPerSecond:F0} | {c.ModelTflopsPerStep:F3} | {c.Mfu * 100:F1}% | {c.PeakRssBytes / 1048576.0:F0} MB | {(c.TrainingPeakRssBytes is { } t ? $"{t / 1048576.0:F0} MB" : "")} | {nf4} |"));
        }
        return string.Join("\n", lines) + "\n";
    }
}
