using System.Text.Json.Nodes;
using Forgetless.Model;
using Forgetless.Model.Safetensors;
using Forgetless.Packaging;
using Forgetless.Peft;
using Forgetless.Tests.Peft;
using static TorchSharp.torch;

namespace Forgetless.Tests.Packaging;

/// <summary>The package's adapter files are exactly what HF PEFT writes, and they load back to the same model.</summary>
[Collection(TorchSerial.Name)]
public sealed class PeftExportTests
{
    private static Dictionary<string, long[]> Shapes(string folder)
    {
        return SafetensorsFile.Open(Path.Combine(folder, AdapterTensors.WeightsFile)).Entries.ToDictionary(e => e.Key, e => e.Value.Shape);
    }

    [Fact]
    public void Llama_LoRA_folder_has_exactly_the_PEFT_keys_and_shapes()
    {
        using var dir = new TempDirectory();
        string basePath = PackageFixtures.SaveBase(dir.Path, PackageFixtures.Llama());
        string adapter = PackageFixtures.SaveLora(dir.Path, basePath, PackageFixtures.QV, new LoraOptions { R = 4, Alpha = 8, UseDora = true, Seed = 3 });
        string target = Path.Combine(dir.Path, "pkg");

        AdapterExport.Write(adapter, basePath, "forgetless-base", target).Should().Be("LORA");

        var shapes = Shapes(target);
        var expected = new Dictionary<string, long[]>();
        for (int layer = 0; layer < 2; layer++)
        {
            string p = $"base_model.model.model.layers.{layer}.self_attn.";
            expected[p + "q_proj.lora_A.weight"] = [4, 32];
            expected[p + "q_proj.lora_B.weight"] = [32, 4];
            expected[p + "q_proj.lora_magnitude_vector"] = [32];
            expected[p + "v_proj.lora_A.weight"] = [4, 32];
            expected[p + "v_proj.lora_B.weight"] = [16, 4]; // 2 kv heads x head_dim 8
            expected[p + "v_proj.lora_magnitude_vector"] = [16];
        }
        shapes.Keys.Should().BeEquivalentTo(expected.Keys);
        foreach (var (key, shape) in expected) shapes[key].Should().Equal(shape, key);

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(target, AdapterFolder.ConfigFile)))!.AsObject();
        config.Select(p => p.Key).Should().BeInAscendingOrder(StringComparer.Ordinal);
        config["peft_type"]!.GetValue<string>().Should().Be("LORA");
        config["task_type"]!.GetValue<string>().Should().Be("CAUSAL_LM");
        config["fan_in_fan_out"]!.GetValue<bool>().Should().BeFalse();
        config["use_dora"]!.GetValue<bool>().Should().BeTrue();
        config["r"]!.GetValue<int>().Should().Be(4);
        config["base_model_name_or_path"]!.GetValue<string>().Should().Be("forgetless-base");
        config["target_modules"]!.AsArray().Select(t => t!.GetValue<string>()).Should().Equal("q_proj", "v_proj");
    }

    [Fact]
    public void GPT2_LoRA_folder_sets_fan_in_fan_out_and_keeps_PEFT_shapes()
    {
        using var dir = new TempDirectory();
        string basePath = PackageFixtures.SaveBase(dir.Path, PackageFixtures.Gpt2());
        // Written without fan_in_fan_out, as a careless tool would: the package sets it from the base model.
        string adapter = PackageFixtures.SaveLora(dir.Path, basePath, ModuleTargets.Suffixes("c_attn"));
        string target = Path.Combine(dir.Path, "pkg");

        AdapterExport.Write(adapter, basePath, "gpt2-tiny", target);

        var shapes = Shapes(target);
        shapes.Keys.Should().BeEquivalentTo(
            "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight", "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight",
            "base_model.model.transformer.h.1.attn.c_attn.lora_A.weight", "base_model.model.transformer.h.1.attn.c_attn.lora_B.weight");
        shapes["base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"].Should().Equal(2, 16);  // [r, in]
        shapes["base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"].Should().Equal(48, 2);  // [out = 3 * hidden, r]
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(target, AdapterFolder.ConfigFile)))!.AsObject();
        config["fan_in_fan_out"]!.GetValue<bool>().Should().BeTrue();
        config["target_modules"]!.AsArray().Select(t => t!.GetValue<string>()).Should().Equal("c_attn");
    }

    [Fact]
    public void Written_adapter_read_back_gives_identical_logits()
    {
        using var dir = new TempDirectory();
        string basePath = PackageFixtures.SaveBase(dir.Path, PackageFixtures.Llama());
        string adapter = PackageFixtures.SaveLora(dir.Path, basePath, PackageFixtures.QV, new LoraOptions { R = 2, Alpha = 4, UseRsLora = true, Seed = 1 });
        string target = Path.Combine(dir.Path, "pkg");
        AdapterExport.Write(adapter, basePath, "b", target);

        using var ids = PackageFixtures.Ids();
        using var original = ModelFolder.LoadModel(basePath);
        AdapterFolder.Apply(original, adapter);
        using var packaged = ModelFolder.LoadModel(basePath);
        AdapterFolder.Apply(packaged, target);
        using var plain = ModelFolder.LoadModel(basePath);
        using var a = original.Forward(ids);
        using var b = packaged.Forward(ids);
        using var c = plain.Forward(ids);
        a.equal(b).all().item<bool>().Should().BeTrue("the packaged adapter must reproduce the logits bit for bit");
        TensorAssert.MaxAbsDiff(a, c).Should().BeGreaterThan(1e-4f, "the adapter must change something for the test to mean anything");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Merged_model_gives_the_logits_of_base_plus_adapter(bool dora)
    {
        using var dir = new TempDirectory();
        string basePath = PackageFixtures.SaveBase(dir.Path, PackageFixtures.Llama());
        string adapter = PackageFixtures.SaveLora(dir.Path, basePath, ModuleTargets.Suffixes("q_proj", "v_proj", "down_proj"),
            new LoraOptions { R = 2, Alpha = 4, UseDora = dora, Seed = 1 });
        string merged = Path.Combine(dir.Path, "merged");
        MergedModel.Write(adapter, basePath, merged, "package.exportMerged");

        File.Exists(Path.Combine(merged, "config.json")).Should().BeTrue();
        File.Exists(Path.Combine(merged, "model.safetensors")).Should().BeTrue();
        using var ids = PackageFixtures.Ids();
        using var adapted = ModelFolder.LoadModel(basePath);
        AdapterFolder.Apply(adapted, adapter);
        using var folded = ModelFolder.LoadModel(merged);
        using var a = adapted.Forward(ids);
        using var b = folded.Forward(ids);
        TensorAssert.MaxAbsDiff(a, b).Should().BeLessThan(1e-5f);
    }

    [Fact]
    public void Merged_GPT2_keeps_the_Conv1D_layout_and_the_logits()
    {
        using var dir = new TempDirectory();
        string basePath = PackageFixtures.SaveBase(dir.Path, PackageFixtures.Gpt2());
        string adapter = PackageFixtures.SaveLora(dir.Path, basePath, ModuleTargets.Suffixes("c_attn", "c_fc"));
        string merged = Path.Combine(dir.Path, "merged");
        MergedModel.Write(adapter, basePath, merged, "package.exportMerged");
        using var ids = PackageFixtures.Ids();
        using var adapted = ModelFolder.LoadModel(basePath);
        AdapterFolder.Apply(adapted, adapter);
        using var folded = ModelFolder.LoadModel(merged);
        using var a = adapted.Forward(ids);
        using var b = folded.Forward(ids);
        TensorAssert.MaxAbsDiff(a, b).Should().BeLessThan(1e-5f);
    }

    [Fact]
    public void Prefix_tuning_cannot_be_merged_and_says_so()
    {
        using var dir = new TempDirectory();
        string adapter = dir.File("prefix/adapter_config.json", """{"peft_type": "PREFIX_TUNING", "num_virtual_tokens": 4}""");
        var act = () => MergedModel.Write(Path.GetDirectoryName(adapter)!, dir.Path, Path.Combine(dir.Path, "merged"), "package.exportMerged");
        act.Should().Throw<UserInputException>().WithMessage("*prefix adapter*cannot be merged*attention keys*package.exportMerged=false*");
    }

    [Fact]
    public void A_PEFT_folder_from_another_tool_with_default_infixes_and_extra_fields_loads_and_is_normalized()
    {
        using var dir = new TempDirectory();
        string basePath = PackageFixtures.SaveBase(dir.Path, PackageFixtures.Llama());
        string ours = PackageFixtures.SaveLora(dir.Path, basePath, PackageFixtures.QV);

        // Rewrite it the way other PEFT versions and tools do: ".default" adapter-name infixes, more config fields.
        string foreign = Path.Combine(dir.Path, "foreign");
        Directory.CreateDirectory(foreign);
        var contents = SafetensorsFile.Open(Path.Combine(ours, AdapterTensors.WeightsFile)).ReadAll();
        var renamed = contents.ToDictionary(t => t.Key.Replace(".lora_A.", ".lora_A.default.").Replace(".lora_B.", ".lora_B.default."), t => t.Value);
        SafetensorsWriter.Write(Path.Combine(foreign, AdapterTensors.WeightsFile), renamed, SafetensorsDType.Keep, new Dictionary<string, string> { ["format"] = "pt" });
        foreach (var t in contents.Values) t.Dispose();
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(ours, AdapterFolder.ConfigFile)))!.AsObject();
        config["auto_mapping"] = null;
        config["megatron_config"] = null;
        config["loftq_config"] = new JsonObject();
        config["eva_config"] = null;
        config["corda_config"] = null;
        config["use_qalora"] = false;
        config["lora_bias"] = false;
        config["target_parameters"] = null;
        config["trainable_token_indices"] = null;
        config["peft_version"] = "0.17.1";
        File.WriteAllText(Path.Combine(foreign, AdapterFolder.ConfigFile), config.ToJsonString());

        using var ids = PackageFixtures.Ids();
        using var a = ModelFolder.LoadModel(basePath);
        AdapterFolder.Apply(a, ours);
        using var b = ModelFolder.LoadModel(basePath);
        AdapterFolder.Apply(b, foreign).Should().Be("LORA");
        using var la = a.Forward(ids);
        using var lb = b.Forward(ids);
        la.equal(lb).all().item<bool>().Should().BeTrue();

        string target = Path.Combine(dir.Path, "pkg");
        AdapterExport.Write(foreign, basePath, "b", target);
        Shapes(target).Keys.Should().OnlyContain(k => !k.Contains(".default"));
        File.ReadAllBytes(Path.Combine(target, AdapterTensors.WeightsFile)).Should().Equal(File.ReadAllBytes(Path.Combine(ours, AdapterTensors.WeightsFile)));
    }

    [Fact]
    public void An_adapter_for_another_base_is_refused_naming_the_tensor_and_shapes()
    {
        using var dir = new TempDirectory();
        string basePath = PackageFixtures.SaveBase(dir.Path, PackageFixtures.Llama());
        string adapter = PackageFixtures.SaveLora(dir.Path, basePath, PackageFixtures.QV);
        string other = PackageFixtures.SaveBase(Path.Combine(dir.Path, "other"),
            ModelConfig.Llama(vocabSize: 64, hiddenSize: 16, numLayers: 2, numHeads: 2, numKvHeads: 2, maxPositions: 64));
        var act = () => AdapterExport.Write(adapter, other, "b", Path.Combine(dir.Path, "pkg"));
        act.Should().Throw<InvalidOperationException>().WithMessage("*q_proj.lora_A.weight*shape [2, 32]*[2, 16]*");
    }
}
