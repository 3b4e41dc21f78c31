using System.Reflection;
using Forgetless.Model;
using Forgetless.Tests.Model.Fixtures;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Tests.Model;

/// <summary>What PEFT code relies on: Linear projections in replaceable fields, and a trainable forward.</summary>
public sealed class AdapterContractTests
{
    [Fact]
    public void Replacing_a_projection_field_by_reflection_changes_the_forward()
    {
        using var model = ModelFactory.Create(ModelConfig.Llama(16, 8, 1, 2), seed: 2);
        var modules = model.named_modules().ToDictionary(m => m.name, m => m.module);
        var attention = modules["model.layers.0.self_attn"];
        modules["model.layers.0.self_attn.q_proj"].Should().BeOfType<TorchSharp.Modules.Linear>();
        using var ids = LogitsAssert.Ids(1, 2, 3);
        using var before = model.Forward(ids);

        var field = attention.GetType().GetField("q_proj", BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public)!;
        var zero = nn.Linear(8, 8, hasBias: false);
        using (no_grad()) zero.weight!.zero_();
        field.SetValue(attention, zero);
        // TorchSharp refuses to register a name twice; registering null removes the old entry first.
        attention.register_module("q_proj", null!);
        attention.register_module("q_proj", zero);

        using var after = model.Forward(ids);
        using var diff = (after - before).abs().max();
        diff.item<float>().Should().BeGreaterThan(1e-5f);
        model.named_parameters().Select(p => p.name).Should().Contain("model.layers.0.self_attn.q_proj.weight");
    }

    [Fact]
    public void Gradients_flow_through_forward()
    {
        using var model = ModelFactory.Create(ModelConfig.FromJson(TinyCheckpoints.Create(new TinySpec("gpt2", Layers: 1, Tied: true)).ConfigJson), seed: 2);
        model.train();
        using var logits = model.Forward(LogitsAssert.Ids(1, 2, 3));
        using var loss = nn.functional.cross_entropy(logits.view(-1, 11), tensor(new long[] { 2, 3, 4 }));
        loss.backward();
        model.named_parameters().Should().AllSatisfy(p => p.parameter.grad.Should().NotBeNull(p.name));
    }
}
