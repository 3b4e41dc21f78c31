using FluentAssertions;
using Forgetless.FineTuning;
using Forgetless.Model;

namespace Forgetless.Tests.FineTuning;

/// <summary>The benchmark drives the real trainer, so regularizer cases really run their terms.</summary>
public sealed class BenchmarkTests
{
    private static readonly ModelConfig Tiny = ModelConfig.Llama(64, 32, 2, 4, 2, maxPositions: 64, tieWordEmbeddings: true);

    [Theory]
    [InlineData("lora")]
    [InlineData("lora+ewc")]
    [InlineData("lora+kd")]
    [InlineData("qlora")]
    public void A_case_reports_throughput_and_its_own_trainable_parameters(string caseName)
    {
        var c = FineTuneBenchmark.Measure("tiny", Tiny, caseName, peakGflops: 10, batch: 2, seqLen: 16, steps: 2);

        c.Method.Should().Be(caseName);
        c.TokensPerStep.Should().Be(32);
        c.TokensPerSecond.Should().BePositive();
        c.Mfu.Should().BePositive();
        c.TrainableParameters.Should().BeGreaterThan(0).And.BeLessThan(c.TotalParameters);
        (c.Nf4Bytes is not null).Should().Be(caseName == "qlora");
    }

    [Fact]
    public void The_default_run_covers_every_method_and_the_regularizer_overheads()
    {
        FineTuneBenchmark.Cases.Should().Contain(["full", "freeze", "lora", "qlora", "adapter", "prefix", "ia3", "lora+ewc", "lora+l2sp", "lora+kd", "lora+si",
            "olora", "olora+orthogonality"]);
    }

    /// <summary>Every case the full benchmark runs is a configuration that trains (orthogonality refuses any method but olora).</summary>
    public static TheoryData<string> EveryCase => new(FineTuneBenchmark.Cases);

    [Theory]
    [MemberData(nameof(EveryCase))]
    public void Every_case_of_the_benchmark_trains(string caseName)
    {
        var c = FineTuneBenchmark.Measure("tiny", Tiny, caseName, peakGflops: 10, batch: 2, seqLen: 16, steps: 1);
        c.TokensPerSecond.Should().BePositive();
    }

    [Fact]
    public void An_unknown_regularizer_in_a_case_is_refused()
    {
        var act = () => FineTuneBenchmark.Measure("tiny", Tiny, "lora+magic", peakGflops: 10, batch: 2, seqLen: 16, steps: 1);
        act.Should().Throw<Forgetless.Configuration.ConfigException>().WithMessage("*'magic' is not a registered term*registered: ewc, l2sp, kd, si*");
    }

    [Fact]
    public void The_matmul_bound_counts_weight_gradients_only_for_trained_weights()
    {
        // Tiny: 2 layers, d 32, 4 heads of 8, 2 kv heads, MLP (85 + 63) / 64 · 64 = 128, vocab 64. Per layer:
        // q, o 32·32 each; k, v 32·16 each; gate, up, down 32·128 each → 2048 + 1024 + 12288 = 15360; N = 2 · 15360 + 32 · 64 = 32768.
        // Per token the attention products cost 12 · L · d · T = 12 · 2 · 32 · 16 = 12288. Batch 2 × 16 = 32 tokens.
        FineTuneBenchmark.MatmulBoundFlops(Tiny, 2, 16, trainedShare: 1).Should().Be(32 * (6.0 * 32768 + 12288));
        FineTuneBenchmark.MatmulBoundFlops(Tiny, 2, 16, trainedShare: 0).Should().Be(32 * (4.0 * 32768 + 12288));
        var full = FineTuneBenchmark.Measure("tiny", Tiny, "full", peakGflops: 10, batch: 2, seqLen: 16, steps: 1);
        full.BoundSecondsPerStep.Should().BeApproximately(32 * (6.0 * 32768 + 12288) / 10e9, 1e-15);
    }
}

/// <summary>`forgetless bench profile`: the step in phases and each kind of work of the step, with the products' bound.</summary>
public sealed class StepProfileTests
{
    private static readonly ModelConfig Tiny = ModelConfig.Llama(64, 32, 2, 4, 2, maxPositions: 64, tieWordEmbeddings: true);

    [Fact]
    public void The_profile_times_every_phase_and_every_kind_of_work_with_the_bound_of_its_products()
    {
        var lines = StepProfile.Measure(Tiny, batch: 2, seqLen: 16, peakGflops: 10, steps: 1);

        lines.Select(l => l.Work).Should().StartWith(["step: forward and loss", "step: backward", "step: gradient norm and clipping", "step: AdamW", "step: zero gradients", "step: total"]);
        lines.Should().OnlyContain(l => l.Seconds > 0);
        lines.Single(l => l.Work == "step: total").Seconds.Should().BeApproximately(lines.Take(5).Sum(l => l.Seconds), 1e-12);
        // Tiny, 32 tokens: q and o are 32·32 (2 per layer, 2 layers), k and v 32·16 (2 kv heads of 8); forward, input and
        // weight gradient: 3 · 2 · 32 tokens · in · out.
        var qo = lines.Single(l => l.Work.StartsWith("matmul: q and o", StringComparison.Ordinal));
        qo.Count.Should().Be("4");
        qo.BoundSeconds.Should().BeApproximately(4 * 3 * 2.0 * 32 * 32 * 32 / 10e9, 1e-15);
        lines.Single(l => l.Work.StartsWith("matmul: k and v", StringComparison.Ordinal)).BoundSeconds
            .Should().BeApproximately(4 * 3 * 2.0 * 32 * 32 * 16 / 10e9, 1e-15);
        // The products together are the benchmark's 6·N per token (N = 32768, see BenchmarkTests).
        lines.Where(l => l.Work.StartsWith("matmul:", StringComparison.Ordinal)).Sum(l => l.BoundSeconds!.Value)
            .Should().BeApproximately(32 * 6.0 * 32768 / 10e9, 1e-12);
        lines.Single(l => l.Work.StartsWith("matmul: output head", StringComparison.Ordinal)).BoundSeconds
            .Should().BeApproximately(3 * 2.0 * 32 * 32 * 64 / 10e9, 1e-15);
        lines.Single(l => l.Work.StartsWith("step: total", StringComparison.Ordinal)).BoundSeconds
            .Should().BeApproximately(FineTuneBenchmark.MatmulBoundFlops(Tiny, 2, 16, trainedShare: 1) / 10e9, 1e-15);
        lines.Select(l => l.Work).Should().Contain(w => w.StartsWith("attention")).And.Contain(w => w.StartsWith("RMSNorm"))
            .And.Contain(w => w.StartsWith("RoPE")).And.Contain(w => w.StartsWith("SwiGLU")).And.Contain(w => w.StartsWith("cross-entropy"));

        var table = StepProfile.Table("tiny", 10, lines);
        table.Should().Contain("| work | per step | ms per step | matmul bound ms | × bound |").And.Contain("| step: total | 1 |");
    }
}
