using Forgetless.Configuration;
using Forgetless.FineTuning;
using Forgetless.Model;
using Forgetless.Model.Devices;
using Microsoft.Extensions.Logging.Abstractions;

namespace Forgetless.Tests.FineTuning;

/// <summary>
/// The peak-memory estimate, part by part, for a small Llama worked out by hand (vocab 1000, hidden 64, 2 layers,
/// 4 heads of 16 with 2 kv heads, MLP 128, rows of 32 tokens, micro-batches of 64), and the check that refuses a run
/// that will not fit, saying what to change.
/// </summary>
public sealed class MemoryEstimateTests
{
    private static readonly ModelConfig Config = ModelConfig.Llama(1000, 64, 2, 4, 2, intermediateSize: 128);

    private static long Part(MemoryEstimate e, string name) => e.Parts.Single(p => p.Part == name).Bytes;

    [Fact]
    public void Each_part_is_counted_from_the_config_the_method_and_the_batch()
    {
        var footprint = new MethodFootprint(Total: 200_000, Trainable: 2_000, Quantized: 0, QuantizedModules: 0);

        var e = MemoryEstimate.Of(Config, footprint, tokensPerBatch: 64, sequenceLength: 32, probeTokens: 64, Placement.Cpu,
            gradientCheckpointing: false, trainsBaseProjections: false);

        Part(e, "weights").Should().Be(198_000 * 4);          // frozen weights in f32
        Part(e, "trainable + adam").Should().Be(2_000 * 16);  // value, gradient, two AdamW moments, f32
        // Per token and layer: 9·64 + 2·32 (k, v) + 3·128 (MLP) + 4·32 (attention probabilities) = 1152 elements;
        // 64 tokens · 4 bytes · 2 layers, plus the softmax's input and output over the last layer's heads (2·4·32).
        Part(e, "activations").Should().Be(64 * 4 * (2 * 1152 + 2 * 4 * 32));
        Part(e, "logits").Should().Be(3 * 64 * 1000 * 4);     // logits, log-softmax, gradient
        Part(e, "runtime").Should().Be(MemoryEstimate.RuntimeBytes);
        e.TotalBytes.Should().Be(792_000 + 32_000 + 655_360 + 768_000 + MemoryEstimate.RuntimeBytes);

        var checkpointed = MemoryEstimate.Of(Config, footprint, 64, 32, 64, Placement.Cpu, gradientCheckpointing: true, trainsBaseProjections: false);
        // Each layer's input (64 per token) for both layers, one layer's activations while it is recomputed.
        Part(checkpointed, "activations (checkpointed)").Should().Be(64 * 4 * (2 * 64 + 1152 + 2 * 4 * 32));
    }

    [Fact]
    public void Qlora_counts_its_base_projections_at_nf4s_size()
    {
        var options = FineTuneFixtureOptions.Parse("finetune.method=qlora", "finetune.lora.r=4", "finetune.lora.targetModules=[q_proj,v_proj]");

        var footprint = options.MethodPlugin.Footprint(Config, options.Plugins);

        // Per layer q 64·64, k 64·32, v 64·32, o 64·64, gate/up/down 64·128 each: 36,864; two layers; 14 modules.
        footprint.Quantized.Should().Be(73_728);
        footprint.QuantizedModules.Should().Be(14);
        // LoRA r 4 on q (64→64) and v (64→32): 4·(64+64) + 4·(64+32) per layer.
        footprint.Trainable.Should().Be(2 * (4 * 128 + 4 * 96));
        var e = MemoryEstimate.Of(Config, footprint, 64, 32, 64, Placement.Cpu, false, false);
        // 4 bits per weight, an 8-bit absmax per block of 64 and an f32 one per 256 blocks (double quantization),
        // and each module's f32 offset: about 4.13 bits per weight, as bitsandbytes stores it.
        Part(e, "nf4 weights").Should().Be(36_864 + 1_152 + 4 * 4 + 4 * 14);
        Part(e, "weights").Should().Be((footprint.Total - footprint.Trainable - 73_728) * 4);
    }

    [Fact]
    public void A_run_that_will_not_fit_is_refused_before_loading_saying_what_to_change()
    {
        using var dir = new Model.Fixtures.TempDir();
        File.WriteAllText(Path.Combine(dir.Path, "config.json"), Config.ToJson().ToJsonString());
        var options = FineTuneFixtureOptions.Parse("finetune.method=lora", "finetune.tokensPerBatch=65536");

        var act = () => MemoryCheck.Before(options, dir.Path, Placement.Cpu, maxMemoryGb: 0.5, NullLogger.Instance, sequenceLength: 1024);

        act.Should().Throw<ConfigException>().WithMessage(
            "finetune: the run needs about * GB but 0.5 GB are available (run.maxMemoryGb); lower finetune.tokensPerBatch (now 65536*set finetune.gradientCheckpointing = true*");
    }
}
