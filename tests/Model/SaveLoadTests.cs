using System.Text.Json.Nodes;
using Forgetless.Model;
using Forgetless.Model.Safetensors;
using Forgetless.Tests.Model.Fixtures;
using static TorchSharp.torch;

namespace Forgetless.Tests.Model;

public sealed class SaveLoadTests
{
    private static Tensor Logits(CausalLM model)
    {
        using var _ = no_grad();
        return model.Forward(LogitsAssert.Ids(2, 5, 7, 1, 9));
    }

    [Theory]
    [InlineData("llama", false)]
    [InlineData("qwen2", true)]
    [InlineData("gpt2", true)]
    public void Saved_folder_loads_back_to_identical_logits(string type, bool tied)
    {
        using var dir = new TempDir();
        var source = TinyCheckpoints.Create(new TinySpec(type, Tied: tied)).WriteTo(dir.Sub("source"));
        File.WriteAllText(Path.Combine(source, "generation_config.json"), """{"bos_token_id": 0, "eos_token_id": 1, "max_new_tokens": 7}""");
        var loaded = ModelFolder.Load(source);
        using var model = loaded.Model;
        File.WriteAllText(Path.Combine(source, "tokenizer_config.json"), "{}");
        ModelFolder.Save(model, dir.Sub("saved"), new ModelSaveOptions { Generation = loaded.Generation, TokenizerDirectory = source });
        File.ReadAllText(Path.Combine(dir.Sub("saved"), "tokenizer_config.json")).Should().Be("{}");
        var reloaded = ModelFolder.Load(dir.Sub("saved"));
        using var again = reloaded.Model;
        using var a = Logits(model);
        using var b = Logits(again);
        LogitsAssert.Close(b, a, 0);
        reloaded.Generation!.MaxNewTokens.Should().Be(7);
        // Saved in the HF layout: same keys and shapes as the checkpoint it came from.
        var original = SafetensorsFile.Open(Path.Combine(source, "model.safetensors")).Entries;
        var saved = SafetensorsFile.Open(Path.Combine(dir.Sub("saved"), "model.safetensors")).Entries;
        saved.Keys.Should().BeEquivalentTo(original.Keys);
        foreach (var (key, entry) in saved) entry.Shape.Should().Equal(original[key].Shape, key);
    }

    [Fact]
    public void Saving_is_deterministic_and_leaves_no_temp_files()
    {
        using var dir = new TempDir();
        using var model = ModelFactory.Create(ModelConfig.Llama(16, 8, 1, 2), seed: 5);
        ModelFolder.Save(model, dir.Sub("a"));
        ModelFolder.Save(model, dir.Sub("b"));
        ModelFolder.Save(model, dir.Sub("b"));
        File.ReadAllBytes(Path.Combine(dir.Sub("a"), "model.safetensors")).Should().Equal(File.ReadAllBytes(Path.Combine(dir.Sub("b"), "model.safetensors")));
        Directory.GetFiles(dir.Sub("b")).Select(Path.GetFileName).Should().BeEquivalentTo("config.json", "model.safetensors");
    }

    [Fact]
    public void Same_seed_same_weights_and_normal_init()
    {
        var config = ModelConfig.Llama(64, 32, 2, 4, 2);
        using var a = ModelFactory.Create(config, seed: 7);
        using var b = ModelFactory.Create(config, seed: 7);
        using var c = ModelFactory.Create(config, seed: 8);
        var pa = a.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var pb = b.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in pa) pb[name].data<float>().ToArray().Should().Equal(p.data<float>().ToArray(), name);
        c.named_parameters().First().parameter.data<float>().ToArray().Should().NotEqual(pa["model.embed_tokens.weight"].data<float>().ToArray());
        var q = pa["model.layers.0.self_attn.q_proj.weight"];
        q.std().item<float>().Should().BeApproximately(0.02f, 0.002f);
        pa["model.norm.weight"].data<float>().ToArray().Should().AllSatisfy(v => v.Should().Be(1f));
    }

    [Fact]
    public void Sharded_checkpoint_equals_unsharded()
    {
        using var dir = new TempDir();
        var checkpoint = TinyCheckpoints.Create(new TinySpec("llama", Heads: 4, KvHeads: 2));
        var single = checkpoint.WriteTo(dir.Sub("single"));
        var sharded = dir.Sub("sharded");
        Directory.CreateDirectory(sharded);
        File.WriteAllText(Path.Combine(sharded, "config.json"), checkpoint.ConfigJson);
        var keys = checkpoint.Tensors.Keys.Order(StringComparer.Ordinal).ToList();
        var shards = new[] { keys.Where((_, i) => i % 2 == 0), keys.Where((_, i) => i % 2 == 1) };
        var map = new JsonObject();
        for (var s = 0; s < 2; s++)
        {
            var name = $"model-0000{s + 1}-of-00002.safetensors";
            TestSafetensors.Write(Path.Combine(sharded, name), shards[s].ToDictionary(k => k, k => checkpoint.Tensors[k]));
            foreach (var k in shards[s]) map[k] = name;
        }
        File.WriteAllText(Path.Combine(sharded, "model.safetensors.index.json"), new JsonObject { ["metadata"] = new JsonObject(), ["weight_map"] = map }.ToJsonString());
        using var a = ModelFolder.LoadModel(single);
        using var b = ModelFolder.LoadModel(sharded);
        using var la = Logits(a);
        using var lb = Logits(b);
        LogitsAssert.Close(lb, la, 0);
    }

    [Fact]
    public void Saving_in_shards_writes_the_index_transformers_writes_and_loads_back_the_same_model()
    {
        using var dir = new TempDir();
        using var model = ModelFactory.Create(ModelConfig.Llama(64, 32, 2, 4, 2), seed: 3);
        var tensors = model.CheckpointTensors().ToList();
        long total = tensors.Sum(t => t.Value.numel() * 2);
        long largest = tensors.Max(t => t.Value.numel() * 2);
        File.WriteAllText(Path.Combine(dir.Path, "model.safetensors"), "stale single file");

        ModelFolder.Save(model, dir.Path, new ModelSaveOptions { DType = SafetensorsDType.BF16, MaxShardBytes = largest + 1 });

        var index = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, "model.safetensors.index.json")))!;
        index["metadata"]!["total_size"]!.GetValue<long>().Should().Be(total);
        var map = index["weight_map"]!.AsObject().ToDictionary(p => p.Key, p => p.Value!.GetValue<string>());
        map.Keys.Should().BeEquivalentTo(tensors.Select(t => t.Key));
        var shards = map.Values.Distinct().Order(StringComparer.Ordinal).ToList();
        shards.Count.Should().BeGreaterThan(1);
        shards.Should().Equal(Enumerable.Range(1, shards.Count).Select(i => $"model-{i:D5}-of-{shards.Count:D5}.safetensors"));
        foreach (var shard in shards)
        {
            var entries = SafetensorsFile.Open(Path.Combine(dir.Path, shard)).Entries;
            entries.Keys.Should().BeEquivalentTo(map.Where(p => p.Value == shard).Select(p => p.Key), shard);
            entries.Values.Sum(e => e.Shape.Aggregate(2L, (a, d) => a * d)).Should().BeLessThanOrEqualTo(largest + 1, shard);
        }
        File.Exists(Path.Combine(dir.Path, "model.safetensors")).Should().BeFalse("a single file next to the index would win on load");
        using var back = ModelFolder.LoadModel(dir.Path);
        using var a = Logits(model);
        using var b = Logits(back);
        LogitsAssert.Close(b, a, 0.05);
    }

    [Fact]
    public void Bf16_and_f16_checkpoints_compute_in_f32_with_the_rounded_values()
    {
        using var dir = new TempDir();
        var checkpoint = TinyCheckpoints.Create(new TinySpec("llama", Layers: 1));
        using var bf16 = ModelFolder.LoadModel(checkpoint.WriteTo(dir.Sub("bf16"), "BF16"));
        using var f16 = ModelFolder.LoadModel(checkpoint.WriteTo(dir.Sub("f16"), "F16"));
        var rounded = checkpoint with
        {
            Tensors = checkpoint.Tensors.ToDictionary(t => t.Key, t => t.Value with { Data = t.Value.Data.Select(TestSafetensors.TruncateToBf16).ToArray() }),
        };
        using var reference = ModelFolder.LoadModel(rounded.WriteTo(dir.Sub("rounded")));
        bf16.parameters().Should().AllSatisfy(p => p.dtype.Should().Be(ScalarType.Float32));
        using var a = Logits(bf16);
        using var b = Logits(reference);
        LogitsAssert.Close(a, b, 0);
        using var c = Logits(f16);
        using var full = Logits(ModelFolder.LoadModel(checkpoint.WriteTo(dir.Sub("f32"))));
        LogitsAssert.Close(c, full, 1e-2);
    }

    [Fact]
    public void Bf16_save_rounds_to_nearest_even_and_loads_as_f32()
    {
        using var dir = new TempDir();
        using var model = ModelFactory.Create(ModelConfig.Llama(16, 8, 1, 2), seed: 1);
        ModelFolder.Save(model, dir.Path, new ModelSaveOptions { DType = SafetensorsDType.BF16 });
        var file = SafetensorsFile.Open(Path.Combine(dir.Path, "model.safetensors"));
        file.Entries.Values.Should().AllSatisfy(e => e.DType.Should().Be("BF16"));
        using var back = ModelFolder.LoadModel(dir.Path);
        using var a = Logits(model);
        using var b = Logits(back);
        LogitsAssert.Close(b, a, 0.05);
        SafetensorsWriter.ToBFloat16(1.00390625f).Should().Be(0x3F80); // halfway: rounds to even (down)
        SafetensorsWriter.ToBFloat16(1.01171875f).Should().Be(0x3F82); // halfway: rounds to even (up)
    }

    [Fact]
    public void Gpt2_exposes_conv1d_modules_as_linear()
    {
        using var model = ModelFactory.Create(ModelConfig.FromJson(TinyCheckpoints.Create(new TinySpec("gpt2", Layers: 1, Tied: true)).ConfigJson), 1);
        model.FanInFanOutModules.Should().BeEquivalentTo(
            "transformer.h.0.attn.c_attn", "transformer.h.0.attn.c_proj", "transformer.h.0.mlp.c_fc", "transformer.h.0.mlp.c_proj");
        var modules = model.named_modules().ToDictionary(m => m.name, m => m.module);
        foreach (var name in model.FanInFanOutModules) modules[name].Should().BeOfType<TorchSharp.Modules.Linear>();
        modules.Keys.Should().NotContain("lm_head");
    }
}
