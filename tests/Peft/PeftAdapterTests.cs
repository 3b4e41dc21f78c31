using Forgetless.Model;
using System.Text.Json;
using Forgetless.Model.Safetensors;
using Forgetless.Peft;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Tests.Peft;

[Collection(TorchSerial.Name)]
public sealed class PeftAdapterTests : IDisposable
{
    private readonly string dir = Path.Combine(Path.GetTempPath(), "forgetless-peft-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }

    private static LoraAdapterConfig Config(bool dora = false) => new()
    {
        Targets = ModuleTargets.Suffixes("v_proj", "q_proj"),
        Options = new LoraOptions { R = 4, Alpha = 16, Dropout = 0.05, UseDora = dora, Seed = 9 },
        BaseModelNameOrPath = "toy/base",
    };

    private static void Perturb(nn.Module model)
    {
        using var _ = no_grad();
        using var g = new Generator(21);
        foreach (var (_, layer) in AdapterLayers.Find(model))
            foreach (var (_, p) in layer.AdapterParameters())
            {
                using var noise = randn(p.shape, generator: g).mul(Scalars.Of(0.1));
                p.add_(noise, Scalars.One);
            }
    }

    [Fact]
    public void Keys_and_shapes_follow_PEFT()
    {
        using var model = new ToyLm();
        var cfg = Config(dora: true);
        Lora.Apply(model, cfg.Targets, cfg.Options);
        var sd = AdapterTensors.StateDict(model);
        sd.Keys.Should().Contain([
            "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
            "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
            "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector",
            "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"]);
        sd.Should().HaveCount(12);
        sd["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"].shape.Should().Equal(4, ToyLm.Dim);
        sd["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"].shape.Should().Equal(ToyLm.Dim, 4);
        sd["base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector"].shape.Should().Equal(ToyLm.Dim);
    }

    [Fact]
    public void Config_has_the_PEFT_fields_with_sorted_keys()
    {
        var json = Config().ToJson();
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        root.EnumerateObject().Select(p => p.Name).Should().BeInAscendingOrder(StringComparer.Ordinal);
        root.GetProperty("peft_type").GetString().Should().Be("LORA");
        root.GetProperty("task_type").GetString().Should().Be("CAUSAL_LM");
        root.GetProperty("r").GetInt32().Should().Be(4);
        root.GetProperty("lora_alpha").GetRawText().Should().Be("16");
        root.GetProperty("lora_dropout").GetDouble().Should().Be(0.05);
        root.GetProperty("target_modules").EnumerateArray().Select(e => e.GetString()).Should().Equal("q_proj", "v_proj");
        root.GetProperty("bias").GetString().Should().Be("none");
        root.GetProperty("inference_mode").GetBoolean().Should().BeTrue();
        root.GetProperty("init_lora_weights").GetBoolean().Should().BeTrue();
        root.GetProperty("use_rslora").GetBoolean().Should().BeFalse();
        root.GetProperty("use_dora").GetBoolean().Should().BeFalse();
        root.GetProperty("fan_in_fan_out").GetBoolean().Should().BeFalse();
        root.GetProperty("modules_to_save").ValueKind.Should().Be(JsonValueKind.Null);
        root.GetProperty("layers_to_transform").ValueKind.Should().Be(JsonValueKind.Null);
        root.GetProperty("base_model_name_or_path").GetString().Should().Be("toy/base");
        root.GetProperty("revision").ValueKind.Should().Be(JsonValueKind.Null);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Save_then_load_into_a_fresh_model_gives_identical_outputs(bool dora)
    {
        using var trained = new ToyLm();
        using var fresh = ToyCopy.Twin(trained);
        var cfg = Config(dora);
        Lora.Apply(trained, cfg.Targets, cfg.Options);
        Perturb(trained);
        LoraMethod.Write(dir, trained, cfg);

        var loaded = LoraMethod.LoadInto(fresh, AdapterFolder.Describe(dir));
        loaded.Options.Should().Be(cfg.Options with { Seed = 0 });
        trained.eval();
        fresh.eval();
        using var ids = ToyLm.SampleIds();
        using var a = trained.forward(ids);
        using var b = fresh.forward(ids);
        TensorAssert.MaxAbsDiff(a, b).Should().Be(0f);
    }

    [Fact]
    public void Same_seed_gives_the_same_bytes()
    {
        using var baseModel = new ToyLm(seed: 4);
        byte[] Save(string sub)
        {
            using var model = ToyCopy.Twin(baseModel); // not a second ToyLm(seed): parallel tests may draw from the global generator
            var cfg = Config(dora: true);
            Lora.Apply(model, cfg.Targets, cfg.Options);
            var folder = Path.Combine(dir, sub);
            LoraMethod.Write(folder, model, cfg);
            return File.ReadAllBytes(Path.Combine(folder, AdapterTensors.WeightsFile))
                .Concat(File.ReadAllBytes(Path.Combine(folder, AdapterFolder.ConfigFile))).ToArray();
        }
        Save("a").Should().Equal(Save("b"));
    }

    [Fact]
    public void Safetensors_header_is_aligned_sorted_and_round_trips()
    {
        using var a = tensor(new float[] { 1, 2, 3 });
        using var b = tensor(new long[] { 7, -8 });
        var bytes = SafetensorsWriter.Serialize(new Dictionary<string, Tensor> { ["z"] = a, ["a"] = b }, SafetensorsDType.Keep, new Dictionary<string, string> { ["format"] = "pt" });
        var n = BitConverter.ToUInt64(bytes, 0);
        (n % 8).Should().Be(0UL);
        var header = System.Text.Encoding.UTF8.GetString(bytes, 8, (int)n);
        header.Should().StartWith("{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]},\"z\":");
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, "t.safetensors");
        File.WriteAllBytes(path, bytes);
        var file = SafetensorsFile.Open(path);
        file.Metadata["format"].Should().Be("pt");
        var back = file.ReadAll();
        back["z"].data<float>().ToArray().Should().Equal(1f, 2f, 3f);
        back["a"].data<long>().ToArray().Should().Equal(7L, -8L);
        foreach (var t in back.Values) t.Dispose();
    }

    [Fact]
    public void Reads_keys_with_the_adapter_name_infix()
    {
        using var source = new ToyLm();
        using var target = ToyCopy.Twin(source);
        var cfg = Config(dora: true);
        Lora.Apply(source, cfg.Targets, cfg.Options);
        Perturb(source);
        var renamed = AdapterTensors.StateDict(source).ToDictionary(
            kv => kv.Key.EndsWith("lora_magnitude_vector") ? kv.Key + ".default.weight" : kv.Key.Replace(".lora_A.", ".lora_A.default.").Replace(".lora_B.", ".lora_B.default."),
            kv => kv.Value);
        renamed.Keys.Should().Contain("base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight");
        Directory.CreateDirectory(dir);
        SafetensorsWriter.Write(Path.Combine(dir, AdapterTensors.WeightsFile), renamed, SafetensorsDType.Keep);
        File.WriteAllText(Path.Combine(dir, AdapterFolder.ConfigFile),
            """{"peft_type": "LORA", "target_modules": ["q_proj", "v_proj"], "r": 4, "lora_alpha": 16, "use_dora": true}""");
        LoraMethod.LoadInto(target, AdapterFolder.Describe(dir));
        source.eval();
        target.eval();
        using var ids = ToyLm.SampleIds();
        using var a = source.forward(ids);
        using var b = target.forward(ids);
        TensorAssert.MaxAbsDiff(a, b).Should().Be(0f);
    }

    [Fact]
    public void Shape_mismatch_names_the_tensor_and_both_shapes()
    {
        using var source = new ToyLm();
        using var target = ToyCopy.Twin(source);
        var cfg = Config();
        Lora.Apply(source, cfg.Targets, cfg.Options);
        LoraMethod.Write(dir, source, cfg);
        File.WriteAllText(Path.Combine(dir, AdapterFolder.ConfigFile), cfg.ToJson().Replace("\"r\": 4", "\"r\": 2"));
        var act = () => LoraMethod.LoadInto(target, AdapterFolder.Describe(dir));
        act.Should().Throw<InvalidOperationException>()
            .WithMessage("*'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight' has shape [4, 8]*has shape [2, 8]*");
    }

    [Fact]
    public void Tensors_for_modules_not_adapted_are_reported()
    {
        using var source = new ToyLm();
        using var target = ToyCopy.Twin(source);
        var cfg = Config();
        Lora.Apply(source, cfg.Targets, cfg.Options);
        LoraMethod.Write(dir, source, cfg);
        File.WriteAllText(Path.Combine(dir, AdapterFolder.ConfigFile), (cfg with { Targets = ModuleTargets.Suffixes("q_proj") }).ToJson());
        var act = () => LoraMethod.LoadInto(target, AdapterFolder.Describe(dir));
        act.Should().Throw<InvalidOperationException>().WithMessage("*v_proj.lora_A.weight*no matching adapter*");
    }
}
