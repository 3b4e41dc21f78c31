using FluentAssertions;
using Forgetless.Model;
using Forgetless.Tests.Peft;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Forgetless.Tests.Model;

/// <summary>The SwiGLU that keeps only its inputs for backward against libtorch's silu · up and its autograd.</summary>
[Collection(TorchSerial.Name)]
public sealed class SwiGluTests
{
    [Fact]
    public void Output_is_the_unfused_product_and_gradients_are_libtorchs()
    {
        using var scope = NewDisposeScope();
        using var g = new Generator(5);
        var gate = randn(new long[] { 3, 7, 11 }, generator: g).mul(3).requires_grad_(true);
        var up = randn(new long[] { 3, 7, 11 }, generator: g).requires_grad_(true);
        var upstream = randn(new long[] { 3, 7, 11 }, generator: g);

        var fused = SwiGlu.Of(gate, up);
        fused.backward([upstream]);
        var (fusedGate, fusedUp) = (gate.grad!.clone(), up.grad!.clone());
        gate.grad!.zero_();
        up.grad!.zero_();
        var plain = nn.functional.silu(gate).mul(up);
        plain.backward([upstream]);

        Values(fused).Should().Equal(Values(plain), "the forward is the unfused expression");
        Values(fusedUp).Should().Equal(Values(up.grad!), "d up = g · silu(gate), the same kernels");
        fusedGate.sub(gate.grad!).abs().max().item<float>().Should().BeLessThan(1e-5f);
        gate.grad!.abs().max().item<float>().Should().BeGreaterThan(0.1f);
    }

    [Fact]
    public void Without_gradients_it_is_the_plain_product()
    {
        using var gate = randn(4, 5);
        using var up = randn(4, 5);
        using var _ = no_grad();
        Values(SwiGlu.Of(gate, up)).Should().Equal(Values(nn.functional.silu(gate).mul(up)));
    }

    private static float[] Values(Tensor t) => t.detach().data<float>().ToArray();
}
