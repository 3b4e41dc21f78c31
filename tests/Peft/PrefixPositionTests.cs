using System.Text.Json.Nodes;
using Forgetless.Model;
using Forgetless.Peft;
using Forgetless.Tests.Model.Fixtures;
using static TorchSharp.torch;

namespace Forgetless.Tests.Peft;

/// <summary>
/// A PREFIX_TUNING folder written by hand (PEFT's layout, no project code) applied to a tiny checkpoint must give the
/// logits HF PEFT gives: the expectation is <see cref="ReferenceTransformer"/>'s scalar forward with the prefix as a
/// KV cache and the real tokens at positions P, P + 1, … (RoPE and GPT-2's learned positions alike).
/// </summary>
[Collection(TorchSerial.Name)]
public sealed class PrefixPositionTests
{
    private const int VirtualTokens = 3;
    private static readonly int[] Tokens = [3, 7, 1, 10, 0, 5];

    private static TinySpec Spec(string type) => type == "gpt2"
        ? new TinySpec("gpt2", Heads: 2, MaxPositions: 16)
        : new TinySpec("llama", Heads: 4, KvHeads: 2); // grouped-query: one prefix key/value per kv head

    /// <summary>prompt_embeddings [P, L·2·token_dim], values like PEFT's nn.Embedding init (spread ~1).</summary>
    private static double[][] Table(TinySpec s)
    {
        var random = new Random(17);
        int tokenDim = s.KvHeads * s.HeadDim;
        if (s.ModelType == "gpt2") tokenDim = s.Hidden;
        return Enumerable.Range(0, VirtualTokens)
            .Select(_ => Enumerable.Range(0, s.Layers * 2 * tokenDim).Select(_ => (double)(float)(random.NextDouble() * 2 - 1)).ToArray())
            .ToArray();
    }

    private static string WritePrefixFolder(string dir, TinySpec s, double[][] table)
    {
        int kvHeads = s.ModelType == "gpt2" ? s.Heads : s.KvHeads;
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "adapter_config.json"), new JsonObject
        {
            ["peft_type"] = "PREFIX_TUNING", ["task_type"] = "CAUSAL_LM", ["num_virtual_tokens"] = VirtualTokens,
            ["num_layers"] = s.Layers, ["token_dim"] = kvHeads * s.HeadDim, ["num_attention_heads"] = kvHeads,
            ["num_transformer_submodules"] = 1, ["prefix_projection"] = false, ["encoder_hidden_size"] = 8, ["inference_mode"] = true,
        }.ToJsonString());
        TestSafetensors.Write(Path.Combine(dir, "adapter_model.safetensors"), new Dictionary<string, TestTensor>
        {
            ["prompt_embeddings"] = new([table.Length, table[0].Length], table.SelectMany(r => r.Select(v => (float)v)).ToArray()),
        });
        return dir;
    }

    /// <summary>A tiny checkpoint of <paramref name="type"/> loaded with a PEFT prefix folder applied to it.</summary>
    private static (TinyCheckpoint Checkpoint, double[][] Table, CausalLM Model) Prefixed(string type, TempDir dir)
    {
        var spec = Spec(type);
        var checkpoint = TinyCheckpoints.Create(spec);
        var table = Table(spec);
        var model = ModelFolder.LoadModel(checkpoint.WriteTo(dir.Sub("model")));
        AdapterFolder.Apply(model, WritePrefixFolder(dir.Sub("prefix"), spec, table));
        return (checkpoint, table, model);
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("gpt2")]
    public void A_PEFT_prefix_folder_scores_as_HF_with_the_real_tokens_after_the_virtual_ones(string type)
    {
        using var dir = new TempDir();
        var (checkpoint, table, model) = Prefixed(type, dir);
        using var _ = model;
        using var noGrad = no_grad();

        using var logits = model.Forward(LogitsAssert.Ids(Tokens.Select(t => (long)t).ToArray()));
        var expected = ReferenceTransformer.Logits(checkpoint, Tokens, table);
        LogitsAssert.Close(LogitsAssert.Rows(logits), expected, 1e-5);

        // The check can tell the numberings apart: real tokens numbered 0, 1, … (as before this fix) give other logits.
        var fromZero = ReferenceTransformer.Logits(checkpoint, Tokens, table, firstPosition: 0);
        expected.Zip(fromZero).Max(p => p.First.Zip(p.Second).Max(q => Math.Abs(q.First - q.Second))).Should().BeGreaterThan(1e-2);
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("gpt2")]
    public void Padded_batches_and_cached_generation_keep_the_offset(string type)
    {
        using var dir = new TempDir();
        var (checkpoint, table, model) = Prefixed(type, dir);
        using var _ = model;
        using var noGrad = no_grad();
        var expected = ReferenceTransformer.Logits(checkpoint, [3, 8, 5], table);

        // Right padding (scoring) and left padding (batched generation): each row as if alone.
        using var right = model.Forward(tensor(new long[] { 3, 8, 5, 0, 0, 1, 2, 3, 4, 6 }, [2, 5]), tensor(new long[] { 1, 1, 1, 0, 0, 1, 1, 1, 1, 1 }, [2, 5]));
        LogitsAssert.Close(LogitsAssert.Rows(right.narrow(1, 0, 3)), expected, 1e-5);
        using var left = model.Forward(tensor(new long[] { 0, 0, 3, 8, 5, 1, 2, 3, 4, 6 }, [2, 5]), tensor(new long[] { 0, 0, 1, 1, 1, 1, 1, 1, 1, 1 }, [2, 5]));
        LogitsAssert.Close(LogitsAssert.Rows(left.narrow(1, 2, 3)), expected, 1e-5);

        // A KV cache: the prompt, then one token at a time, continues the numbering P + t.
        using var cache = model.NewCache();
        using var first = model.Forward(LogitsAssert.Ids(3, 8), cache: cache);
        using var next = model.Forward(LogitsAssert.Ids(5), cache: cache);
        LogitsAssert.Close([.. LogitsAssert.Rows(first), .. LogitsAssert.Rows(next)], expected, 1e-5);
    }

    [Fact]
    public void GPT2_positions_used_by_the_prefix_shorten_the_context()
    {
        using var dir = new TempDir();
        var spec = Spec("gpt2");
        var checkpoint = TinyCheckpoints.Create(spec);
        using var model = ModelFolder.LoadModel(checkpoint.WriteTo(dir.Sub("model")));
        model.ContextLength.Should().Be(16);
        AdapterFolder.Apply(model, WritePrefixFolder(dir.Sub("prefix"), spec, Table(spec)));
        model.ContextLength.Should().Be(16 - VirtualTokens);
        using var _ = no_grad();
        using var fits = model.Forward(tensor(Enumerable.Repeat(2L, 13).ToArray(), [1, 13]));
        var tooLong = () => model.Forward(tensor(Enumerable.Repeat(2L, 14).ToArray(), [1, 14]));
        tooLong.Should().Throw<ArgumentException>().WithMessage("*17 tokens*n_positions 16*");
    }
}
