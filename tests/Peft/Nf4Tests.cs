using Forgetless.Peft;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Tests.Peft;

[Collection(TorchSerial.Name)]
public sealed class Nf4Tests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_single_block_dequantizes_to_code_times_absmax_exactly(bool doubleQuant)
    {
        var values = new float[] { 0.5f, -2f, 1.3f, 0f, 0.1f, -0.7f, 2f, 0.95f };
        using var w = tensor(values).reshape(2, 4);
        var q = Nf4.Quantize(w, doubleQuant);
        q.Blocks.Should().Be(1);
        q.BlockAbsmax(0).Should().Be(2f);
        using var back = Nf4.Dequantize(q);
        var got = TensorAssert.Values(back);
        for (var i = 0; i < values.Length; i++)
            got[i].Should().Be(Nf4.Codes[Nf4.NearestCode(values[i] / 2f)] * 2f);
        got[1].Should().Be(-2f);
        got[3].Should().Be(0f);
        got[6].Should().Be(2f);
        Nf4.NearestCode(0.039f).Should().Be(7); // midpoint of 0 and 0.0796 is 0.0398
        Nf4.NearestCode(0.041f).Should().Be(8);
        Nf4.NearestCode(-1.5f).Should().Be(0);
    }

    [Fact]
    public void Blocks_are_64_values_with_their_own_absmax()
    {
        using var g = new Generator(2);
        using var w = randn(new long[] { 10, 13 }, generator: g); // 130 values: blocks of 64, 64, 2
        var q = Nf4.Quantize(w, doubleQuant: false);
        q.Blocks.Should().Be(3);
        q.Packed.Length.Should().Be(65);
        var flat = TensorAssert.Values(w);
        for (var b = 0; b < 3; b++)
            q.Absmax![b].Should().Be(flat.Skip(64 * b).Take(64).Max(Math.Abs));
        using var back = Nf4.Dequantize(q);
        var got = TensorAssert.Values(back);
        for (var i = 0; i < flat.Length; i++)
            got[i].Should().Be(Nf4.Codes[Nf4.NearestCode(flat[i] / q.Absmax![i / 64])] * q.Absmax![i / 64]);
    }

    [Fact]
    public void Double_quantized_constants_stay_within_the_stated_bound()
    {
        using var g = new Generator(3);
        using var w = randn(new long[] { 600, 64 }, generator: g) * (rand(new long[] { 600, 1 }, generator: g) * 3 + 0.1); // 600 blocks, 3 groups of 256
        var exact = Nf4.Quantize(w, doubleQuant: false);
        var dq = Nf4.Quantize(w, doubleQuant: true);
        dq.AbsmaxScales!.Length.Should().Be(3);
        dq.Packed.Should().Equal(exact.Packed);
        for (var b = 0; b < 600; b++)
        {
            var bound = dq.AbsmaxScales[b / 256] / 254f + 1e-6f;
            Math.Abs(dq.BlockAbsmax(b) - exact.Absmax![b]).Should().BeLessThanOrEqualTo(bound);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Nf4Linear_dequantizes_like_the_reference_and_reports_its_bytes(bool doubleQuant)
    {
        torch.manual_seed(5);
        using var linear = nn.Linear(96, 40);
        var q = Nf4.Quantize(linear.weight, doubleQuant);
        using var nf4 = new Nf4Linear(q, linear.bias);
        using var reference = Nf4.Dequantize(q);
        using var dense = nf4.DenseWeight();
        TensorAssert.Values(dense).Should().Equal(TensorAssert.Values(reference));
        // 3840 values: 1920 bytes of codes + 60 blocks of constants.
        nf4.WeightStorageBytes.Should().Be(doubleQuant ? 1920 + 60 + 4 + 4 : 1920 + 240);
        nf4.parameters().Should().OnlyContain(p => !p.requires_grad);
        // Error of NF4 itself: at most half the widest code gap (1 - 0.696 = 0.304) × absmax per value (+ absmax error).
        TensorAssert.MaxAbsDiff(dense, linear.weight).Should().BeLessThan(0.16f * TensorAssert.Values(linear.weight).Max(Math.Abs));
    }

    [Fact]
    public void Memory_of_a_4096_square_matrix()
    {
        // Analytic, from the layout: 4-bit codes + one int8 absmax per 64 + one f32 scale per 256 blocks + the mean.
        long n = 4096L * 4096, blocks = n / 64;
        var bytes = n / 2 + blocks + 4 * ((blocks + 255) / 256) + 4;
        bytes.Should().Be(8_654_852);
        ((double)bytes / (4 * n)).Should().BeApproximately(0.129, 0.001);
        (8.0 * (blocks + 4 * (blocks / 256)) / n).Should().BeApproximately(0.127, 0.001); // bits per parameter for the constants
    }

    [Fact]
    public void QLoRA_with_zero_B_equals_the_dequantized_base()
    {
        using var model = new ToyLm();
        var targets = ModuleTargets.Suffixes("q_proj", "v_proj", "down_proj");
        QLora.Apply(model, targets, new LoraOptions { R = 4, Alpha = 8 });
        var lora = (LoraLinear)model.model.layers[0].self_attn.v_proj;
        lora.base_layer.Should().BeOfType<Nf4Linear>();
        var (nf4Bytes, f32Bytes) = QLora.WeightBytes(model);
        f32Bytes.Should().Be(2 * 4 * (2 * 8 * 8 + 8 * 16)); // q, v [8, 8] and down [8, 16] in two layers
        model.named_modules().Select(m => m.name).Should().OnlyHaveUniqueItems();
        model.named_buffers().Select(b => b.name).Should().Contain("model.layers.0.self_attn.v_proj.base_layer.weight_packed")
            .And.NotContain(n => n.Contains("frozen"));
        nf4Bytes.Should().BeLessThan(f32Bytes / 5);
        var nf4 = (Nf4Linear)lora.base_layer;
        using var x = randn(3, ToyLm.Dim);
        using var y = lora.forward(x);
        using var w = nf4.DenseWeight();
        using var expected = nn.functional.linear(x, w, nf4.Bias);
        TensorAssert.MaxAbsDiff(y, expected).Should().Be(0f);
        var merge = () => lora.Merge();
        merge.Should().Throw<InvalidOperationException>().WithMessage("*quantized*");
    }
}
