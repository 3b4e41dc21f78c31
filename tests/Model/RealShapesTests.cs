using Forgetless.Model;
using Forgetless.Stages.Verbs.Synthesize;
using static TorchSharp.torch;

namespace Forgetless.Tests.Model;

/// <summary>
/// The shapes `forgetless synthesize-model` writes are the real models': built on the meta device (no memory), they have
/// exactly the parameters the published checkpoints have, counted here from the architecture by hand.
/// </summary>
public sealed class RealShapesTests
{
    /// <summary>A Llama-family decoder: embeddings (tied: no lm_head), per layer q/k/v/o (+ q/k/v biases), SwiGLU MLP, two norms; final norm.</summary>
    private static long Parameters(long vocab, long hidden, long kvWidth, long intermediate, long layers, bool qkvBias) =>
        vocab * hidden
        + layers * (2 * hidden * hidden + 2 * hidden * kvWidth + (qkvBias ? hidden + 2 * kvWidth : 0) + 3 * hidden * intermediate + 2 * hidden)
        + hidden;

    [Theory]
    [InlineData("smollm2-135m", 134_515_008L)] // HuggingFaceTB/SmolLM2-135M: 49152·576 + 30 layers (kv 3·64, MLP 1536)
    [InlineData("qwen2.5-0.5b", 494_032_768L)] // Qwen/Qwen2.5-0.5B: 151936·896 + 24 layers (kv 2·64, MLP 4864, qkv bias)
    public void A_synthesized_shape_has_the_real_models_parameters(string name, long published)
    {
        var shape = RealShapes.Find(name)!;
        var config = ModelConfig.FromJson(shape.Config.ToJsonString(), name);

        using var model = ModelFactory.CreateUninitialized(config with { Raw = shape.Config }, META);

        long counted = model.parameters().Sum(p => p.numel());
        long byHand = name == "smollm2-135m"
            ? Parameters(49152, 576, 3 * 64, 1536, 30, qkvBias: false)
            : Parameters(151936, 896, 2 * 64, 4864, 24, qkvBias: true);
        byHand.Should().Be(published);
        counted.Should().Be(published);
        model.named_parameters().Select(p => p.name).Should().NotContain(n => n.StartsWith("lm_head"), "both real models tie the output layer to the embeddings");
    }

    [Fact]
    public async Task An_unknown_shape_is_a_usage_error_listing_the_shapes()
    {
        var result = await ForgetlessProcess.RunAsync(Path.GetTempPath(), "synthesize-model", "--shape", "llama-70b", "--output", "x");

        result.ExitCode.Should().Be(2, result.ToString());
        result.Output.Should().Contain("unknown --shape 'llama-70b'").And.Contain("smollm2-135m, qwen2.5-0.5b");
        result.HasStackTrace.Should().BeFalse();
    }
}
