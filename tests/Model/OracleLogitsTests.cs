using System.Text.Json.Nodes;
using Forgetless.Model;
using Forgetless.Tests.Model.Fixtures;
using static TorchSharp.torch;

namespace Forgetless.Tests.Model;

/// <summary>Loaded checkpoints against the scalar-loop oracle in <see cref="ReferenceTransformer"/>.</summary>
public sealed class OracleLogitsTests
{
    private static readonly int[] Tokens = [3, 7, 1, 10, 0, 5];

    private static void AssertMatchesOracle(TinySpec spec)
    {
        using var dir = new TempDir();
        var checkpoint = TinyCheckpoints.Create(spec);
        using var model = ModelFolder.LoadModel(checkpoint.WriteTo(dir.Path));
        using var _ = no_grad();
        using var ids = LogitsAssert.Ids(Tokens.Select(t => (long)t).ToArray());
        using var logits = model.Forward(ids);
        logits.shape.Should().Equal(1, Tokens.Length, spec.Vocab);
        logits.dtype.Should().Be(ScalarType.Float32);
        LogitsAssert.Close(LogitsAssert.Rows(logits), ReferenceTransformer.Logits(checkpoint, Tokens), 1e-5);
    }

    [Fact]
    public void Llama_with_grouped_query_attention_matches_oracle() =>
        AssertMatchesOracle(new TinySpec("llama", Heads: 4, KvHeads: 2));

    [Fact]
    public void Llama_with_explicit_head_dim_and_biases_matches_oracle() =>
        AssertMatchesOracle(new TinySpec("llama", Heads: 2, KvHeads: 1, HeadDimOverride: 6, AttentionBias: true, MlpBias: true));

    [Fact]
    public void Gpt2_checkpoint_without_base_prefix_and_with_mask_buffers_loads()
    {
        // The original openai-community/gpt2 file: keys like "h.0.attn.c_attn.weight" plus causal-mask buffers.
        using var dir = new TempDir();
        var checkpoint = TinyCheckpoints.Create(new TinySpec("gpt2", Tied: true, Layers: 1));
        var bare = checkpoint with
        {
            Tensors = checkpoint.Tensors.ToDictionary(t => t.Key.Replace("transformer.", ""), t => t.Value),
        };
        bare.Tensors["h.0.attn.bias"] = new TestTensor([1, 1, 32, 32], new float[32 * 32]);
        using var model = ModelFolder.LoadModel(bare.WriteTo(dir.Path));
        using var _ = no_grad();
        using var logits = model.Forward(LogitsAssert.Ids(Tokens.Select(t => (long)t).ToArray()));
        LogitsAssert.Close(LogitsAssert.Rows(logits), ReferenceTransformer.Logits(checkpoint, Tokens), 1e-5);
    }

    [Fact]
    public void Llama_with_tied_embeddings_matches_oracle() =>
        AssertMatchesOracle(new TinySpec("llama", Heads: 2, KvHeads: 1, Tied: true, Layers: 1));

    [Fact]
    public void Llama3_rope_scaling_matches_oracle() =>
        // theta and original context chosen so that the head's frequencies fall in all three llama3 bands.
        AssertMatchesOracle(new TinySpec("llama", Hidden: 16, Heads: 2, KvHeads: 1, RopeTheta: 500, RopeScaling: new JsonObject
        {
            ["rope_type"] = "llama3", ["factor"] = 8.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0,
            ["original_max_position_embeddings"] = 64,
        }));

    [Fact]
    public void Linear_rope_scaling_matches_oracle() =>
        AssertMatchesOracle(new TinySpec("llama", Layers: 1, RopeScaling: new JsonObject { ["type"] = "linear", ["factor"] = 2.0 }));

    [Fact]
    public void Qwen2_with_qkv_biases_matches_oracle() =>
        AssertMatchesOracle(new TinySpec("qwen2", Heads: 4, KvHeads: 2));

    [Fact]
    public void Mistral_within_sliding_window_matches_oracle() =>
        AssertMatchesOracle(new TinySpec("mistral", Layers: 1, SlidingWindow: 16));

    [Fact]
    public void Gpt2_with_conv1d_weights_matches_oracle() =>
        AssertMatchesOracle(new TinySpec("gpt2", Tied: true));

    [Fact]
    public void Gpt2_with_separate_lm_head_matches_oracle() =>
        AssertMatchesOracle(new TinySpec("gpt2", Layers: 1, Heads: 4));

    [Fact]
    public void Llama3_frequencies_cover_all_three_bands()
    {
        // Guards the test above: with these settings some frequencies are kept, some divided, some blended.
        var scaling = new RopeScaling("llama3", 8, 1, 4, 64);
        var plain = RotaryEmbedding.InverseFrequencies(16, 500, null);
        var scaled = RotaryEmbedding.InverseFrequencies(16, 500, scaling);
        var ratios = plain.Zip(scaled, (p, s) => p / s).ToArray();
        ratios.Should().Contain(r => Math.Abs(r - 1) < 1e-12);
        ratios.Should().Contain(r => Math.Abs(r - 8) < 1e-9);
        ratios.Should().Contain(r => r > 1.01 && r < 7.99);
    }
}
