using Forgetless.Model;
using Forgetless.Peft;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Tests.Peft;

[Collection(TorchSerial.Name)]
public sealed class LoraTests
{
    private static readonly ModuleTargets QV = ModuleTargets.Suffixes("q_proj", "v_proj");

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void A_fresh_adapter_leaves_logits_unchanged(bool rsLora, bool dora)
    {
        using var model = new ToyLm();
        using var ids = ToyLm.SampleIds();
        using var before = model.forward(ids);
        Lora.Apply(model, QV, new LoraOptions { R = 4, Alpha = 16, UseRsLora = rsLora, UseDora = dora, Seed = 3 });
        using var after = model.forward(ids);
        TensorAssert.MaxAbsDiff(before, after).Should().BeLessThan(1e-6f);
    }

    [Fact]
    public void Scaling_is_alpha_over_r_or_alpha_over_sqrt_r()
    {
        new LoraOptions { R = 16, Alpha = 32 }.Scaling.Should().Be(2.0);
        new LoraOptions { R = 16, Alpha = 32, UseRsLora = true }.Scaling.Should().Be(8.0);
    }

    [Fact]
    public void Dora_magnitude_is_the_row_norm_of_the_base_weight()
    {
        using var model = new ToyLm();
        var q = (Linear)model.model.layers[0].self_attn.q_proj;
        using var expected = q.weight.detach().Squared().sum(1).sqrt();
        Lora.Apply(model, QV, new LoraOptions { R = 2, UseDora = true });
        var lora = (LoraLinear)model.model.layers[0].self_attn.q_proj;
        lora.lora_magnitude_vector!.shape.Should().Equal(ToyLm.Dim);
        TensorAssert.MaxAbsDiff(lora.lora_magnitude_vector, expected).Should().Be(0f);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Merged_forward_equals_unmerged_and_unmerge_restores_the_weight(bool dora)
    {
        using var model = new ToyLm();
        using var plain = ToyCopy.Twin(model);
        Lora.Apply(model, QV, new LoraOptions { R = 4, Alpha = 8, UseDora = dora });
        var weights = model.named_parameters().Where(p => p.name.EndsWith("base_layer.weight")).ToDictionary(p => p.name, p => TensorAssert.Values(p.parameter));
        using (no_grad())
        {
            using var g = new Generator(11);
            foreach (var (_, layer) in AdapterLayers.Find(model))
            {
                var l = (LoraLinear)layer;
                using var b = randn(l.lora_B.weight.shape, generator: g).mul(Scalars.Of(0.3));
                l.lora_B.weight.copy_(b);
                if (l.lora_magnitude_vector is { } m) m.mul_(Scalars.Of(1.2));
            }
        }
        using var ids = ToyLm.SampleIds();
        using var unmerged = model.forward(ids);
        Lora.MergeAll(model);
        using var merged = model.forward(ids);
        TensorAssert.MaxAbsDiff(unmerged, merged).Should().BeLessThan(1e-4f);
        using var baseline = plain.forward(ids);
        TensorAssert.MaxAbsDiff(unmerged, baseline).Should().BeGreaterThan(1e-3f); // the adapter does something
        Lora.UnmergeAll(model);
        foreach (var (name, p) in model.named_parameters().Where(p => p.name.EndsWith("base_layer.weight")))
        {
            var now = TensorAssert.Values(p);
            for (var i = 0; i < now.Length; i++) now[i].Should().BeApproximately(weights[name][i], 1e-5f);
        }
        using var again = model.forward(ids);
        TensorAssert.MaxAbsDiff(unmerged, again).Should().BeLessThan(1e-4f);
    }

    [Fact]
    public void Suffix_targets_hit_exactly_the_named_projections()
    {
        using var model = new ToyLm();
        var paths = Lora.Apply(model, QV, new LoraOptions { R = 2 });
        paths.Should().BeEquivalentTo(
            "model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
            "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj");
        model.model.layers[1].self_attn.q_proj.Should().BeOfType<LoraLinear>();
        model.model.layers[1].self_attn.k_proj.Should().BeOfType<Linear>();
        // Registration replaced in place: the order of children is unchanged.
        model.model.layers[0].self_attn.named_children().Select(c => c.name).Should().Equal("q_proj", "k_proj", "v_proj", "o_proj");
        model.named_parameters().Select(p => p.name).Should().Contain("model.layers.0.self_attn.q_proj.lora_A.weight")
            .And.Contain("model.layers.0.self_attn.q_proj.base_layer.weight");
    }

    [Fact]
    public void Regex_targets_must_match_the_whole_path()
    {
        using var model = new ToyLm();
        var paths = Lora.Apply(model, ModuleTargets.FullMatch(@"model\.layers\.1\.(self_attn\.(q|k)_proj|mlp\.down_proj)"), new LoraOptions { R = 2 });
        paths.Should().BeEquivalentTo("model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.k_proj", "model.layers.1.mlp.down_proj");
        // A partial match is not enough (re.fullmatch).
        using var other = new ToyLm();
        var act = () => Lora.Apply(other, ModuleTargets.FullMatch("q_proj"), new LoraOptions { R = 2 });
        act.Should().Throw<InvalidOperationException>().WithMessage("*No module matched*");
    }

    [Fact]
    public void Layers_to_transform_keeps_only_listed_layers()
    {
        using var model = new ToyLm();
        var paths = Lora.Apply(model, ModuleTargets.Suffixes("q_proj", "down_proj") with { LayersToTransform = [1] }, new LoraOptions { R = 2 });
        paths.Should().BeEquivalentTo("model.layers.1.self_attn.q_proj", "model.layers.1.mlp.down_proj");
    }

    [Fact]
    public void Unmatched_or_non_linear_targets_fail_clearly()
    {
        using var model = new ToyLm();
        var none = () => Lora.Apply(model, ModuleTargets.Suffixes("query_key_value"), new LoraOptions());
        none.Should().Throw<InvalidOperationException>().WithMessage("*No module matched*query_key_value*model.embed_tokens*");
        var notLinear = () => Lora.Apply(model, ModuleTargets.Suffixes("self_attn"), new LoraOptions());
        notLinear.Should().Throw<InvalidOperationException>().WithMessage("*model.layers.0.self_attn*ToyAttention*not a Linear*");
        var twice = () => { Lora.Apply(model, QV, new LoraOptions()); Lora.Apply(model, QV, new LoraOptions()); };
        twice.Should().Throw<InvalidOperationException>().WithMessage("*already has an adapter (LoraLinear)*");
    }

    [Fact]
    public void A_field_declared_as_Linear_is_reported()
    {
        using var m = new LinearTypedField();
        var act = () => Lora.Apply(m, ModuleTargets.Suffixes("q_proj"), new LoraOptions());
        act.Should().Throw<InvalidOperationException>().WithMessage("*declared as Linear*Module<Tensor, Tensor>*");
    }

    [Fact]
    public void Same_seed_gives_same_A_and_different_modules_differ()
    {
        using var m1 = new ToyLm();
        using var m2 = ToyCopy.Twin(m1);
        Lora.Apply(m1, QV, new LoraOptions { R = 4, Seed = 5 });
        Lora.Apply(m2, QV, new LoraOptions { R = 4, Seed = 5 });
        var a1 = AdapterLayers.NamedParameters(m1);
        var a2 = AdapterLayers.NamedParameters(m2);
        foreach (var (k, v) in a1) TensorAssert.Values(v).Should().Equal(TensorAssert.Values(a2[k]));
        TensorAssert.Values(a1["model.layers.0.self_attn.q_proj.lora_A.weight"])
            .Should().NotEqual(TensorAssert.Values(a1["model.layers.1.self_attn.q_proj.lora_A.weight"]));
        // kaiming-uniform(a = sqrt(5)) bound is 1/sqrt(in).
        TensorAssert.Values(a1["model.layers.0.self_attn.q_proj.lora_A.weight"]).Should().OnlyContain(v => Math.Abs(v) <= 1 / Math.Sqrt(ToyLm.Dim));
    }

    [Fact]
    public void Freezing_helpers_choose_the_trainable_parameters()
    {
        using var model = new ToyLm();
        Freezing.FreezeBottom(model, 1);
        var trainable = Freezing.Trainable(model).Select(p => p.name).ToList();
        trainable.Should().NotContain(n => n.StartsWith("model.embed_tokens") || n.StartsWith("model.layers.0."));
        trainable.Should().Contain("model.layers.1.self_attn.q_proj.weight").And.Contain("lm_head.weight").And.Contain("model.norm.weight");
        Freezing.Full(model);
        Freezing.Trainable(model).Should().HaveCount(model.parameters().Count());
        Lora.Apply(model, QV, new LoraOptions { R = 2, UseDora = true });
        Freezing.OnlyAdapters(model);
        Freezing.Trainable(model).Select(p => p.name).Should().OnlyContain(n => n.Contains(".lora_")).And.HaveCount(12);
    }
}
