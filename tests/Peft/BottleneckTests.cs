using Forgetless.Peft;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Tests.Peft;

[Collection(TorchSerial.Name)]
public sealed class BottleneckTests
{
    [Theory]
    [InlineData(AdapterActivation.Relu)]
    [InlineData(AdapterActivation.Gelu)]
    [InlineData(AdapterActivation.Silu)]
    public void A_fresh_bottleneck_adapter_changes_nothing(AdapterActivation activation)
    {
        using var model = new ToyLm();
        using var ids = ToyLm.SampleIds();
        using var before = model.forward(ids);
        var paths = Bottleneck.Apply(model, ModuleTargets.Suffixes("o_proj", "down_proj"), new BottleneckOptions { BottleneckSize = 3, Activation = activation });
        paths.Should().HaveCount(4);
        using var after = model.forward(ids);
        TensorAssert.MaxAbsDiff(before, after).Should().Be(0f);
        var sd = AdapterTensors.StateDict(model);
        sd.Keys.Should().Contain("base_model.model.model.layers.1.mlp.down_proj.adapter_up.weight");
        sd["base_model.model.model.layers.1.mlp.down_proj.adapter_down.weight"].shape.Should().Equal(3, ToyLm.Dim);
    }
}
