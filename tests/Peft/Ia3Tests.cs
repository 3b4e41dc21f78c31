using System.Text.Json.Nodes;
using Forgetless.Model;
using Forgetless.Model.Safetensors;
using Forgetless.Packaging;
using Forgetless.Peft;
using Forgetless.Tests.Packaging;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Tests.Peft;

/// <summary>(IA)³ computes, saves, loads, exports and merges as HF PEFT's IA3 tuner does.</summary>
[Collection(TorchSerial.Name)]
public sealed class Ia3Tests
{
    /// <summary>A Linear 3 → 2 with hand-picked weight and bias, x = [1, 2, 3].</summary>
    private static (Linear Linear, Tensor X) HandLinear()
    {
        var linear = nn.Linear(3, 2);
        using (no_grad())
        {
            linear.weight.copy_(tensor(new float[] { 1, 0, -1, 2, 1, 0 }).view(2, 3));
            linear.bias!.copy_(tensor(new float[] { 0.5f, -1 }));
        }
        return (linear, tensor(new float[] { 1, 2, 3 }).view(1, 3));
    }

    [Fact]
    public void Attention_targets_scale_the_output_and_feedforward_targets_the_input()
    {
        // W·x + b = [1 − 3 + 0.5, 2 + 2 − 1] = [−1.5, 3].
        var (linear, x) = HandLinear();
        using var output = new Ia3Linear(linear, isFeedforward: false);
        output.ia3_l.shape.Should().Equal(2, 1);
        using (no_grad()) output.ia3_l.copy_(tensor(new float[] { 2, -0.5f }).view(2, 1));
        // (W·x + b) ⊙ l = [−3, −1.5]
        TensorAssert.Values(output.forward(x)).Should().Equal(-3f, -1.5f);

        var (linear2, x2) = HandLinear();
        using var input = new Ia3Linear(linear2, isFeedforward: true);
        input.ia3_l.shape.Should().Equal(1, 3);
        using (no_grad()) input.ia3_l.copy_(tensor(new float[] { 1, 0, 2 }).view(1, 3));
        // x ⊙ l = [1, 0, 6]; W·(x ⊙ l) + b = [1 − 6 + 0.5, 2 + 0 − 1] = [−4.5, 1]
        TensorAssert.Values(input.forward(x2)).Should().Equal(-4.5f, 1f);
    }

    [Fact]
    public void A_fresh_vector_is_all_ones_and_changes_nothing()
    {
        var (linear, x) = HandLinear();
        using var expected = linear.forward(x);
        using var layer = new Ia3Linear(linear, isFeedforward: false);
        TensorAssert.Values(layer.ia3_l).Should().OnlyContain(v => v == 1f);
        TensorAssert.MaxAbsDiff(layer.forward(x), expected).Should().Be(0f);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Merging_folds_the_vector_into_weight_and_bias_as_PEFT_does(bool feedforward)
    {
        var (linear, x) = HandLinear();
        using var layer = new Ia3Linear(linear, feedforward);
        using (no_grad()) layer.ia3_l.copy_(feedforward ? tensor(new float[] { 1, 0, 2 }).view(1, 3) : tensor(new float[] { 2, -0.5f }).view(2, 1));
        using var before = layer.forward(x);
        layer.Merge();
        using var after = layer.forward(x);
        TensorAssert.MaxAbsDiff(before, after).Should().BeLessThan(1e-6f);
        // PEFT: W ← W ⊙ l ([out, 1] scales rows, [1, in] scales columns); an output scaling also scales the bias.
        TensorAssert.Values(linear.weight).Should().Equal(feedforward ? [1f, 0, -2, 2, 0, 0] : [2f, 0, -2, -1, -0.5f, 0]);
        TensorAssert.Values(linear.bias!).Should().Equal(feedforward ? [0.5f, -1] : [1f, 0.5f]);
    }

    [Fact]
    public void The_folder_is_PEFTs_IA3_format_and_reloads_to_the_same_logits()
    {
        using var dir = new TempDirectory();
        var config = PackageFixtures.Llama(); // d 32, 4 heads, 2 kv heads (kv width 16), intermediate 128
        string basePath = PackageFixtures.SaveBase(dir.Path, config);
        var options = FineTuning.FineTuneFixtureOptions.Parse("finetune.method=ia3");
        using var tuned = options.Apply(ModelFolder.LoadModel(basePath), seed: 1);
        PackageFixtures.Perturb(tuned.Model);
        string folder = Path.Combine(dir.Path, "ia3");
        tuned.Method.Save(tuned, folder, "base");

        var saved = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, AdapterFolder.ConfigFile)))!.AsObject();
        saved["peft_type"]!.GetValue<string>().Should().Be("IA3");
        saved["target_modules"]!.AsArray().Select(n => n!.GetValue<string>()).Should().Equal("down_proj", "k_proj", "v_proj");
        saved["feedforward_modules"]!.AsArray().Select(n => n!.GetValue<string>()).Should().Equal("down_proj");
        saved["fan_in_fan_out"]!.GetValue<bool>().Should().BeFalse();
        saved["init_ia3_weights"]!.GetValue<bool>().Should().BeTrue();
        saved["task_type"]!.GetValue<string>().Should().Be("CAUSAL_LM");

        var expected = new Dictionary<string, long[]>();
        for (int layer = 0; layer < 2; layer++)
        {
            string p = $"base_model.model.model.layers.{layer}.";
            expected[p + "self_attn.k_proj.ia3_l"] = [16, 1];
            expected[p + "self_attn.v_proj.ia3_l"] = [16, 1];
            expected[p + "mlp.down_proj.ia3_l"] = [1, 128];
        }
        var shapes = SafetensorsFile.Open(Path.Combine(folder, AdapterTensors.WeightsFile)).Entries.ToDictionary(e => e.Key, e => e.Value.Shape);
        shapes.Keys.Should().BeEquivalentTo(expected.Keys);
        foreach (var (key, shape) in expected) shapes[key].Should().Equal(shape, key);

        using var ids = PackageFixtures.Ids();
        using var trained = tuned.Model.Forward(ids);
        using var reloaded = ModelFolder.LoadModel(basePath);
        AdapterFolder.Apply(reloaded, folder).Should().Be("IA3");
        using var logits = reloaded.Forward(ids);
        TensorAssert.MaxAbsDiff(trained, logits).Should().Be(0f);
    }

    [Fact]
    public void GPT2_Conv1D_targets_set_fan_in_fan_out_and_keep_PEFTs_shapes()
    {
        using var dir = new TempDirectory();
        string basePath = PackageFixtures.SaveBase(dir.Path, PackageFixtures.Gpt2()); // d 16
        var options = FineTuning.FineTuneFixtureOptions.Parse("finetune.method=ia3", "finetune.ia3.targetModules=[c_attn,mlp.c_proj]", "finetune.ia3.feedforwardModules=[mlp.c_proj]");
        using var tuned = options.Apply(ModelFolder.LoadModel(basePath), seed: 1);
        string folder = Path.Combine(dir.Path, "ia3");
        tuned.Method.Save(tuned, folder, "gpt2");
        var saved = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, AdapterFolder.ConfigFile)))!.AsObject();
        saved["fan_in_fan_out"]!.GetValue<bool>().Should().BeTrue();
        var shapes = SafetensorsFile.Open(Path.Combine(folder, AdapterTensors.WeightsFile)).Entries.ToDictionary(e => e.Key, e => e.Value.Shape);
        shapes["base_model.model.transformer.h.0.attn.c_attn.ia3_l"].Should().Equal(48, 1); // out = 3·d
        shapes["base_model.model.transformer.h.0.mlp.c_proj.ia3_l"].Should().Equal(1, 12); // in = the fixture's n_inner, 12
        shapes.Keys.Should().NotContain(k => k.Contains("attn.c_proj"), "the attention output projection is not a target");
    }

    [Fact]
    public void A_merged_IA3_model_gives_the_adapted_logits_and_the_package_keeps_PEFTs_files()
    {
        using var dir = new TempDirectory();
        string basePath = PackageFixtures.SaveBase(dir.Path, PackageFixtures.Llama());
        var options = FineTuning.FineTuneFixtureOptions.Parse("finetune.method=ia3");
        string folder = Path.Combine(dir.Path, "ia3");
        using (var tuned = options.Apply(ModelFolder.LoadModel(basePath), seed: 1))
        {
            PackageFixtures.Perturb(tuned.Model);
            tuned.Method.Save(tuned, folder, "/abs/base");
        }
        string merged = Path.Combine(dir.Path, "merged");
        MergedModel.Write(folder, basePath, merged, "package.exportMerged");
        using var ids = PackageFixtures.Ids();
        using var adapted = ModelFolder.LoadModel(basePath);
        AdapterFolder.Apply(adapted, folder);
        using var plain = ModelFolder.LoadModel(merged);
        using var a = adapted.Forward(ids);
        using var b = plain.Forward(ids);
        TensorAssert.MaxAbsDiff(a, b).Should().BeLessThan(1e-5f);

        string package = Path.Combine(dir.Path, "pkg");
        AdapterExport.Write(folder, basePath, "forgetless-base", package).Should().Be("IA3");
        File.ReadAllBytes(Path.Combine(package, AdapterTensors.WeightsFile)).Should().Equal(File.ReadAllBytes(Path.Combine(folder, AdapterTensors.WeightsFile)));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(package, AdapterFolder.ConfigFile)))!.AsObject();
        config["base_model_name_or_path"]!.GetValue<string>().Should().Be("forgetless-base");
        config["peft_type"]!.GetValue<string>().Should().Be("IA3");
    }

    [Theory]
    [InlineData("finetune.ia3.feedforwardModules=[o_proj]", "finetune.ia3.feedforwardModules")]
    [InlineData("finetune.ia3.targetModules=[gate_proj]", "finetune.ia3.feedforwardModules")]
    public void Bad_ia3_settings_are_config_errors_naming_the_key(string setting, string key)
    {
        var act = () => FineTuning.FineTuneFixtureOptions.Parse("finetune.method=ia3", setting);
        act.Should().Throw<Forgetless.Configuration.ConfigException>().WithMessage($"*{key}*");
    }
}
