using System.Diagnostics;
using System.Globalization;
using Forgetless.Model;
using Forgetless.Training;
using static TorchSharp.torch;

namespace Forgetless.FineTuning;

/// <summary>
/// Where a full fine-tuning step's time goes on this machine (`forgetless bench profile --model NAME`): the step in
/// phases (forward with the loss, backward, gradient norm and clipping, AdamW), then each kind of work of the step on
/// its own at the model's shapes, forward and backward, times how often a step does it — the matrix products (each
/// projection's forward, input gradient and weight gradient), the fused attention, RMSNorm, RoPE, SwiGLU, the
/// cross-entropy over the vocabulary and the embedding lookup — against the bound of the same products at the measured
/// matmul peak. Medians of several runs after a warm-up; the parts are measured alone, so their sum is not the step.
/// </summary>
public static class StepProfile
{
    public sealed record Line(string Work, string Count, double Seconds, double? BoundSeconds);

    /// <summary>One of <see cref="FineTuneBenchmark.Models"/> with the benchmark's batch (4 × 256 tokens on base, 2 × 256 on large).</summary>
    public static IReadOnlyList<Line> Measure(string modelName, double peakGflops, int steps = 6) =>
        Measure(FineTuneBenchmark.Models[modelName], FineTuneBenchmark.BatchOf(modelName), FineTuneBenchmark.SequenceLength, peakGflops, steps);

    public static IReadOnlyList<Line> Measure(ModelConfig config, int batch, int seqLen, double peakGflops, int steps)
    {
        var lines = new List<Line>();
        lines.AddRange(Phases(config, batch, seqLen, steps, peakGflops));
        lines.AddRange(Parts(config, batch, seqLen, peakGflops));
        return lines;
    }

    /// <summary>The step as the trainer runs it for full fine-tuning, timed phase by phase (each phase ends with a host read or has no pending work).</summary>
    private static IEnumerable<Line> Phases(ModelConfig config, int batch, int seqLen, int steps, double peakGflops)
    {
        using var model = ModelFactory.Create(config, 1);
        model.train();
        var named = model.named_parameters().Select(p => (p.name, p.parameter)).ToList();
        var parameters = named.Select(p => p.parameter).ToList();
        using var optimizer = AdamWOptimizer.ForParameters(named, new AdamWOptions());
        using var ids = randint(config.VocabSize, [batch, seqLen], dtype: ScalarType.Int64);
        using var targets = ids.narrow(1, 1, seqLen - 1);
        var times = new Dictionary<string, List<double>>();
        void Time(string phase, Action work)
        {
            var clock = Stopwatch.StartNew();
            work();
            if (!times.TryGetValue(phase, out var list)) times[phase] = list = [];
            list.Add(clock.Elapsed.TotalSeconds);
        }
        for (int step = 0; step <= steps; step++)
        {
            using var scope = NewDisposeScope();
            Tensor loss = null!;
            Time("forward and loss", () =>
            {
                loss = LossProbe.TokenNll(model.Forward(ids), targets).mean();
                _ = loss.item<float>();
            });
            Time("backward", () => loss.backward());
            Time("gradient norm and clipping", () =>
            {
                using var norm = Gradients.GlobalNorm(parameters)!;
                Gradients.Clip(parameters, norm.item<float>(), 1e-3); // always clips: the work of a clipped step
            });
            Time("AdamW", () => optimizer.Step());
            Time("zero gradients", optimizer.ZeroGrad);
            if (step == 0) times.Clear(); // the warm-up step allocates the optimizer state
        }
        var phases = times.Select(t => new Line($"step: {t.Key}", "1", FineTuneBenchmark.Median(t.Value), null)).ToList();
        phases.Add(new Line("step: total", "1", phases.Sum(p => p.Seconds), FineTuneBenchmark.MatmulBoundFlops(config, batch, seqLen, 1) / (peakGflops * 1e9)));
        return phases;
    }

    private static IEnumerable<Line> Parts(ModelConfig c, int batch, int seqLen, double peakGflops)
    {
        long tokens = (long)batch * seqLen;
        int layers = c.NumHiddenLayers, d = c.HiddenSize, heads = c.NumAttentionHeads, headDim = c.HeadDim;
        double Bound(double flops) => flops / (peakGflops * 1e9);
        string L(int n) => n.ToString(CultureInfo.InvariantCulture);

        foreach (var (name, inF, outF, count) in new[]
                 {
                     ("q and o projections", (long)d, (long)heads * headDim, 2 * layers),
                     ("k and v projections", (long)d, (long)c.NumKeyValueHeads * headDim, 2 * layers),
                     ("gate and up projections", (long)d, (long)c.IntermediateSize, 2 * layers),
                     ("down projection", (long)c.IntermediateSize, (long)d, layers),
                     ("output head (vocabulary)", (long)d, (long)c.VocabSize, 1),
                 })
        {
            using var x = randn(tokens, inF);
            using var w = randn(outF, inF);
            using var dy = randn(tokens, outF);
            double flops = 2.0 * tokens * inF * outF;
            double forward = Median(() => x.matmul(w.t())), input = Median(() => dy.matmul(w)), weight = Median(() => dy.t().matmul(x));
            yield return new Line($"matmul: {name}, forward + input grad + weight grad", L(count), count * (forward + input + weight), count * Bound(3 * flops));
        }

        using (var q = randn(batch, heads, seqLen, headDim).requires_grad_())
        using (var k = randn(batch, heads, seqLen, headDim).requires_grad_())
        using (var v = randn(batch, heads, seqLen, headDim).requires_grad_())
        using (var g = randn(batch, heads, seqLen, headDim))
        {
            // Causal: half of the T×T products, forward (2) and backward (4).
            double flops = 6.0 * 2 * batch * heads * seqLen * (double)seqLen * headDim / 2;
            yield return new Line("attention (fused, causal), forward + backward", L(layers),
                layers * Backward(() => nn.functional.scaled_dot_product_attention(q, k, v, null, 0, true).backward([g]), q, k, v), layers * Bound(flops));
            using var cos = randn(batch, 1, seqLen, headDim);
            using var sin = randn(batch, 1, seqLen, headDim);
            yield return new Line("RoPE, forward + backward", L(2 * layers), 2 * layers * Backward(() => RotaryEmbedding.Apply(q, cos, sin).backward([g]), q), null);
        }

        using (var norm = new RmsNorm(d, c.NormEps))
        using (var x = randn(batch, seqLen, d).requires_grad_())
        using (var g = randn(batch, seqLen, d))
            yield return new Line("RMSNorm, forward + backward", L(2 * layers + 1), (2 * layers + 1) * Backward(() => norm.call(x).backward([g]), x), null);

        using (var gate = randn(batch, seqLen, c.IntermediateSize).requires_grad_())
        using (var up = randn(batch, seqLen, c.IntermediateSize).requires_grad_())
        using (var g = randn(batch, seqLen, c.IntermediateSize))
            yield return new Line("SwiGLU (silu(gate) · up), forward + backward", L(layers), layers * Backward(() => (nn.functional.silu(gate) * up).backward([g]), gate, up), null);

        using (var logits = randn(batch, seqLen, c.VocabSize).requires_grad_())
        using (var targets = randint(c.VocabSize, [batch, seqLen - 1], dtype: ScalarType.Int64))
            yield return new Line("cross-entropy over the vocabulary, forward + backward", "1", Backward(() => LossProbe.TokenNll(logits, targets).mean().backward(), logits), null);

        using (var table = new TokenEmbedding(c.VocabSize, d))
        using (var ids = randint(c.VocabSize, [batch, seqLen], dtype: ScalarType.Int64))
        using (var g = randn(batch, seqLen, d))
            yield return new Line("embedding lookup, forward + backward", "1", Backward(() => table.call(ids).backward([g])), null);
    }

    /// <summary>
    /// Median seconds of a forward and backward. The gradients of <paramref name="activations"/> (inputs standing for a
    /// step's activations) are dropped before each run: in a step they are made once, not added into.
    /// </summary>
    private static double Backward(Action work, params Tensor[] activations) => Median(() =>
    {
        foreach (var a in activations) a.grad = null;
        work();
        return null;
    });

    /// <summary>Median seconds of <paramref name="work"/> (a tensor it returns is read, so the work is done) after one warm-up.</summary>
    private static double Median(Func<Tensor?> work, int repeats = 9)
    {
        var times = new List<double>();
        for (int i = 0; i <= repeats; i++)
        {
            using var scope = NewDisposeScope();
            var clock = Stopwatch.StartNew();
            work()?.data<float>()[0].GetHashCode();
            if (i > 0) times.Add(clock.Elapsed.TotalSeconds);
        }
        return FineTuneBenchmark.Median(times);
    }

    /// <summary>The Markdown table of docs/benchmarks/finetune.md's profile section.</summary>
    public static string Table(string modelName, double peakGflops, IReadOnlyList<Line> lines)
    {
        var result = new List<string>
        {
            string.Create(CultureInfo.InvariantCulture, $"{modelName}, full fine-tuning, f32 matmul peak {peakGflops:F1} GFLOP/s, {get_num_threads()} torch threads."),
            "",
            "| work | per step | ms per step | matmul bound ms | × bound |",
            "|---|---:|---:|---:|---:|",
        };
        foreach (var line in lines)
            result.Add(string.Create(CultureInfo.InvariantCulture,
                $"| {line.Work} | {line.Count} | {line.Seconds * 1e3:F1} | {(line.BoundSeconds is { } b ? $"{b * 1e3:F1}" : "")} | {(line.BoundSeconds is { } x ? $"{line.Seconds / x:F2}" : "")} |"));
        return string.Join("\n", result) + "\n";
    }
}
