using Forgetless.Model;
using Forgetless.Peft;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Tests.Peft;

internal sealed class ToyGpt2Attn : nn.Module<Tensor, Tensor>
{
    public nn.Module<Tensor, Tensor> c_attn, c_proj;

    public ToyGpt2Attn(long d) : base("attn")
    {
        c_attn = nn.Linear(d, 3 * d);
        c_proj = nn.Linear(3 * d, d);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => c_proj.forward(c_attn.forward(x));
}

internal sealed class ToyGpt2Block : nn.Module<Tensor, Tensor>
{
    public ToyGpt2Attn attn;

    public ToyGpt2Block(long d) : base("block")
    {
        attn = new ToyGpt2Attn(d);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => x.add(attn.forward(x), Scalars.One);
}

internal sealed class ToyGpt2Body : nn.Module<Tensor, Tensor>
{
    public ModuleList<ToyGpt2Block> h;

    public ToyGpt2Body(long d, int n) : base("transformer")
    {
        h = nn.ModuleList(Enumerable.Range(0, n).Select(_ => new ToyGpt2Block(d)).ToArray());
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        foreach (var b in h) x = b.forward(x);
        return x;
    }
}

/// <summary>transformer.h.N.attn.c_attn / c_proj, the GPT-2 layout (Conv1D already transposed to Linear).</summary>
internal sealed class ToyGpt2 : nn.Module<Tensor, Tensor>
{
    public ToyGpt2Body transformer;

    public ToyGpt2() : base("gpt2")
    {
        transformer = new ToyGpt2Body(6, 3);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => transformer.forward(x);
}

[Collection(TorchSerial.Name)]
public sealed class Gpt2ShapeTests
{
    [Fact]
    public void Layer_indices_come_from_layers_N_or_h_N()
    {
        ModuleTargets.LayerIndexOf("transformer.h.3.attn.c_attn").Should().Be(3);
        ModuleTargets.LayerIndexOf("model.layers.12.mlp.down_proj").Should().Be(12);
        ModuleTargets.LayerIndexOf("lm_head").Should().BeNull();
        ModuleTargets.LayerIndexOf("model.embed_tokens").Should().BeNull();
    }

    [Fact]
    public void GPT2_c_attn_gets_PEFT_keys_and_layers_to_transform_works()
    {
        using var model = new ToyGpt2();
        using var x = randn(2, 6);
        using var before = model.forward(x);
        var paths = Lora.Apply(model, ModuleTargets.Suffixes("c_attn") with { LayersToTransform = [0, 2] }, new LoraOptions { R = 2, Alpha = 4 });
        paths.Should().Equal("transformer.h.0.attn.c_attn", "transformer.h.2.attn.c_attn");
        using var after = model.forward(x);
        TensorAssert.MaxAbsDiff(before, after).Should().Be(0f);
        var sd = AdapterTensors.StateDict(model);
        sd.Keys.Should().Equal(
            "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight",
            "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight",
            "base_model.model.transformer.h.2.attn.c_attn.lora_A.weight",
            "base_model.model.transformer.h.2.attn.c_attn.lora_B.weight");
        sd["base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"].shape.Should().Equal(18, 2);
        var cfg = new LoraAdapterConfig { Targets = ModuleTargets.Suffixes("c_attn") with { LayersToTransform = [2, 0] }, Options = new LoraOptions { R = 2, Alpha = 4 }, FanInFanOut = true };
        cfg.ToJson().Should().Contain("\"fan_in_fan_out\": true").And.Contain("\"layers_to_transform\": [\n    0,\n    2\n  ]");
    }
}
