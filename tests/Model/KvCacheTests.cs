using Forgetless.Model;
using Forgetless.Model.Inference;
using Forgetless.Tests.Model.Fixtures;
using static TorchSharp.torch;

namespace Forgetless.Tests.Model;

public sealed class KvCacheTests
{
    private static CausalLM Create(string type) => ModelFactory.Create(
        ModelConfig.FromJson(TinyCheckpoints.Create(new TinySpec(type, Heads: 4, KvHeads: type == "gpt2" ? 4 : 2)).ConfigJson), seed: 3);

    [Theory]
    [InlineData("llama")]
    [InlineData("gpt2")]
    public void Cached_steps_give_the_same_logits_as_a_full_forward(string type)
    {
        using var model = Create(type);
        using var _ = no_grad();
        long[] tokens = [4, 2, 9, 7, 1, 3];
        using var full = model.Forward(LogitsAssert.Ids(tokens));
        using var cache = model.NewCache();
        // A prompt of three tokens, then one token per step.
        using var first = model.Forward(LogitsAssert.Ids(tokens[..3]), cache: cache);
        LogitsAssert.Close(first, full.narrow(1, 0, 3), 1e-5);
        for (var t = 3; t < tokens.Length; t++)
        {
            using var step = model.Forward(LogitsAssert.Ids(tokens[t]), cache: cache);
            LogitsAssert.Close(step, full.narrow(1, t, 1), 1e-5);
        }
        cache.Length.Should().Be(tokens.Length);
    }

    [Fact]
    public void Greedy_generation_matches_argmax_of_full_forward_passes()
    {
        using var model = Create("llama");
        var tokenizer = new IdTokenizer(11);
        var result = new TextGenerator(model, tokenizer).Generate([5, 6, 2], new GenerationOptions { MaxNewTokens = 6, StopTokenIds = [] });

        var expected = new List<long> { 5, 6, 2 };
        using (no_grad())
        {
            for (var i = 0; i < 6; i++)
            {
                using var logits = model.Forward(LogitsAssert.Ids(expected.ToArray()));
                using var last = logits[0, -1].argmax();
                expected.Add(last.item<long>());
            }
        }
        result.TokenIds.Select(t => (long)t).Should().Equal(expected.Skip(3));
        result.FinishReason.Should().Be("length");
    }

    [Fact]
    public void Left_padded_batch_row_matches_the_row_alone()
    {
        using var model = Create("llama");
        using var _ = no_grad();
        using var alone = model.Forward(LogitsAssert.Ids(3, 8, 5));
        using var ids = tensor(new long[] { 0, 0, 3, 8, 5, 1, 2, 3, 4, 6 }, [2, 5]);
        using var mask = tensor(new long[] { 0, 0, 1, 1, 1, 1, 1, 1, 1, 1 }, [2, 5]);
        using var batched = model.Forward(ids, mask);
        LogitsAssert.Close(batched[0].narrow(0, 2, 3).unsqueeze(0), alone, 1e-5);
    }

    [Fact]
    public void Null_prefix_provider_changes_nothing_and_a_zero_length_prefix_neither()
    {
        using var model = Create("llama");
        using var _ = no_grad();
        using var before = model.Forward(LogitsAssert.Ids(1, 2, 3));
        model.PrefixKeyValues.Should().BeNull();
        model.PrefixKeyValues = new EmptyPrefix();
        using var after = model.Forward(LogitsAssert.Ids(1, 2, 3));
        model.PrefixKeyValues = null;
        using var diff = (after - before).abs().max();
        diff.item<float>().Should().Be(0f, "a provider with no virtual tokens must not change the computation");
    }

    [Fact]
    public void Prefix_keys_are_attended_to()
    {
        using var model = Create("llama");
        using var _ = no_grad();
        using var before = model.Forward(LogitsAssert.Ids(1, 2, 3));
        model.PrefixKeyValues = new RandomPrefix(model.Config);
        using var after = model.Forward(LogitsAssert.Ids(1, 2, 3));
        model.PrefixKeyValues = null;
        using var diff = (after - before).abs().max();
        diff.item<float>().Should().BeGreaterThan(1e-4f);
    }

    [Fact]
    public void Sampling_is_deterministic_for_a_seed()
    {
        using var model = Create("gpt2");
        var generator = new TextGenerator(model, new IdTokenizer(11));
        var options = new GenerationOptions { MaxNewTokens = 8, Temperature = 1.5, TopP = 0.9, Seed = 42, StopTokenIds = [] };
        var a = generator.Generate([1, 2], options);
        var b = generator.Generate([1, 2], options);
        a.TokenIds.Should().Equal(b.TokenIds);
        a.TokenIds.Should().HaveCount(8);
    }

    [Fact]
    public void Generation_stops_at_a_stop_token()
    {
        using var model = Create("llama");
        var generator = new TextGenerator(model, new IdTokenizer(11));
        var free = generator.Generate([1, 2], new GenerationOptions { MaxNewTokens = 5, StopTokenIds = [] });
        var stopped = generator.Generate([1, 2], new GenerationOptions { MaxNewTokens = 5, StopTokenIds = [free.TokenIds[1]] });
        stopped.FinishReason.Should().Be("eos");
        stopped.TokenIds.Should().Equal(free.TokenIds.TakeWhile(t => t != free.TokenIds[1]));
    }

    private sealed class EmptyPrefix : IPrefixKeyValues
    {
        public int Length => 0;
        public (Tensor Keys, Tensor Values) ForLayer(int layer, long batchSize) => throw new InvalidOperationException("not called for length 0");
    }

    private sealed class RandomPrefix(ModelConfig c) : IPrefixKeyValues
    {
        public int Length => 2;
        public (Tensor Keys, Tensor Values) ForLayer(int layer, long batchSize) =>
            (randn(batchSize, c.NumKeyValueHeads, 2, c.HeadDim), randn(batchSize, c.NumKeyValueHeads, 2, c.HeadDim));
    }
}
