using System.Diagnostics;
using System.Globalization;
using System.Text;
using Forgetless.Model;
using Forgetless.Model.Inference;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Benchmarks;

/// <summary>Throughput of one model configuration.</summary>
public sealed record ModelThroughput(
    string Name, string Shape, long Parameters, double ForwardTokensPerSecond, double ScoringTokensPerSecond, double PeakRssMiB);

/// <param name="Machine">CPU model, core count and OS.</param>
/// <param name="LoadAverage">/proc/loadavg before and after: other processes on a shared machine lower every number here.</param>
public sealed record ModelBenchmarkResult(
    double MatmulGflops1024, double MatmulGflops2048, int TorchThreads, IReadOnlyList<ModelThroughput> Models,
    string Machine, string LoadAverage, string Markdown);

/// <summary>
/// How fast this machine runs our models: f32 matmul GFLOP/s (the ceiling), then forward and scoring
/// tokens/s of a small and a medium randomly initialised Llama, with the process's peak RSS after each.
/// Takes one to three minutes on two cores.
/// </summary>
public static class ModelBenchmark
{
    private const int Batch = 8, SequenceLength = 128;

    /// <param name="torchThreads">Torch intra-op threads for the run (restored afterwards); null keeps the current setting.
    /// On a shared machine fewer threads can be much faster: a parallel op waits for its slowest thread.</param>
    public static ModelBenchmarkResult Run(TextWriter? progress = null, int? torchThreads = null)
    {
        var previousThreads = get_num_threads();
        if (torchThreads is { } n) set_num_threads(n);
        try
        {
            return RunWithCurrentThreads(progress ?? Console.Out);
        }
        finally
        {
            set_num_threads(previousThreads);
        }
    }

    private static ModelBenchmarkResult RunWithCurrentThreads(TextWriter progress)
    {
        var loadBefore = LoadAverage();
        var machine = Machine();
        progress.WriteLine($"machine: {machine}; load average {loadBefore}; {get_num_threads()} torch threads");
        var gflops1024 = MatmulGflops(1024, repeats: 9, progress);
        var gflops2048 = MatmulGflops(2048, repeats: 5, progress);
        var models = new List<ModelThroughput>
        {
            Measure("small", ModelConfig.Llama(8192, 256, 4, 4, maxPositions: 512), progress),
            Measure("medium", ModelConfig.Llama(8192, 512, 8, 8, maxPositions: 512), progress),
        };
        var threads = get_num_threads();
        var load = $"{loadBefore} before, {LoadAverage()} after";
        return new ModelBenchmarkResult(gflops1024, gflops2048, threads, models, machine, load,
            Markdown(gflops1024, gflops2048, threads, models, machine, load));
    }

    private static double MatmulGflops(int n, int repeats, TextWriter progress)
    {
        progress.WriteLine($"matmul {n}x{n} f32: warming up");
        using var a = randn(n, n);
        using var b = randn(n, n);
        for (var i = 0; i < 2; i++) matmul(a, b).Dispose();
        var seconds = Median(Enumerable.Range(0, repeats).Select(_ => Time(() => matmul(a, b).Dispose())));
        var gflops = 2.0 * n * n * n / seconds / 1e9;
        progress.WriteLine($"matmul {n}x{n} f32: {gflops:F1} GFLOP/s (median of {repeats})");
        return gflops;
    }

    private static ModelThroughput Measure(string name, ModelConfig config, TextWriter progress)
    {
        progress.WriteLine($"{name}: creating {config.NumHiddenLayers} layers, d={config.HiddenSize}, vocab {config.VocabSize}");
        using var model = ModelFactory.Create(config, seed: 0);
        var parameters = model.parameters().Sum(p => p.numel());
        var random = new Random(0);
        var ids = Enumerable.Range(0, Batch * SequenceLength).Select(_ => (long)random.Next(config.VocabSize)).ToArray();
        using var input = tensor(ids, [Batch, SequenceLength]);

        double forward;
        using (no_grad())
        {
            model.Forward(input).Dispose();
            forward = Batch * SequenceLength / Median(Enumerable.Range(0, 3).Select(_ => Time(() => model.Forward(input).Dispose())));
        }
        progress.WriteLine($"{name}: forward {forward:F0} tokens/s (B={Batch}, T={SequenceLength})");

        // Scoring: 32 rows, 16 context + 112 scored tokens each, batched by the Scorer.
        var rows = Enumerable.Range(0, 32).Select(r => (ids[(r % Batch * SequenceLength)..(r % Batch * SequenceLength + 16)],
            ids[(r % Batch * SequenceLength + 16)..((r % Batch + 1) * SequenceLength)]))
            .Select(r => (r.Item1.Select(i => (int)i).ToArray(), r.Item2.Select(i => (int)i).ToArray())).ToList();
        var scorer = new Scorer(model, new NoTokenizer(config.VocabSize), batchSize: Batch);
        var scoredTokens = rows.Sum(r => r.Item2.Length);
        var scoring = scoredTokens / Time(() => scorer.ScoreTokens(rows));
        var rss = PeakRssMiB();
        progress.WriteLine($"{name}: scoring {scoring:F0} tokens/s, peak RSS {rss:F0} MiB");
        return new ModelThroughput(name, $"{config.NumHiddenLayers} layers, d={config.HiddenSize}, {config.NumAttentionHeads} heads, vocab {config.VocabSize}",
            parameters, forward, scoring, rss);
    }

    /// <summary>VmHWM from /proc/self/status: the process's peak resident set; NaN where there is no procfs.</summary>
    public static double PeakRssMiB()
    {
        const string status = "/proc/self/status";
        if (!File.Exists(status)) return double.NaN;
        var line = File.ReadLines(status).FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        if (line is null) return double.NaN;
        var kb = double.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        return kb / 1024;
    }

    private static double Time(Action action)
    {
        var watch = Stopwatch.StartNew();
        action();
        return watch.Elapsed.TotalSeconds;
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static string Machine()
    {
        var cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
            : null;
        return $"{cpu ?? "unknown CPU"}, {Environment.ProcessorCount} logical cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}";
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    private static string Markdown(double g1024, double g2048, int threads, IReadOnlyList<ModelThroughput> models, string machine, string load)
    {
        var inv = CultureInfo.InvariantCulture;
        var md = new StringBuilder();
        md.AppendLine(inv, $"Machine: {machine}. Load average (1/5/15 min): {load}.");
        md.AppendLine();
        md.AppendLine(inv, $"f32 matmul, {threads} torch thread{(threads == 1 ? "" : "s")}: 1024² {g1024:F1} GFLOP/s, 2048² {g2048:F1} GFLOP/s (warm, median).");
        md.AppendLine();
        md.AppendLine("| model | shape | parameters | forward tokens/s | scoring tokens/s | peak RSS MiB |");
        md.AppendLine("|---|---|---:|---:|---:|---:|");
        foreach (var m in models)
            md.AppendLine(inv, $"| {m.Name} | {m.Shape} | {m.Parameters / 1e6:F1} M | {m.ForwardTokensPerSecond:F0} | {m.ScoringTokensPerSecond:F0} | {m.PeakRssMiB:F0} |");
        md.AppendLine();
        md.AppendLine(inv, $"Forward: batch {Batch} × {SequenceLength} tokens, no grad, median of 3. Scoring: 32 rows of 16 context + 112 scored tokens through `Scorer` (batch {Batch}).");
        return md.ToString();
    }

    /// <summary>The benchmark scores token ids directly; no text is involved.</summary>
    private sealed class NoTokenizer(int vocabSize) : Model.Tokenizers.ITokenizer
    {
        public int VocabSize => vocabSize;
        public int? BosId => null;
        public int? EosId => null;
        public int? PadId => null;
        public int[] Encode(string text) => throw new NotSupportedException();
        public string Decode(IEnumerable<int> ids) => throw new NotSupportedException();
    }
}
