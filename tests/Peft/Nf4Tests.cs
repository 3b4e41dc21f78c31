using Forgetless.Model;
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
            got[i].Should().Be(Nf4.Codes[Nf4.NearestCode(values[i] * 0.5f)] * 2f);
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
        // bitsandbytes scales by the f32 reciprocal of the absmax (dQuantizeNF4(x * (1/absmax))).
        for (var i = 0; i < flat.Length; i++)
            got[i].Should().Be(Nf4.Codes[Nf4.NearestCode(flat[i] * (1f / q.Absmax![i / 64]))] * q.Absmax![i / 64]);
    }

    [Fact]
    public void The_code_thresholds_are_bitsandbytes_decision_tree()
    {
        // dQuantizeNF4 in bitsandbytes' kernels.cu compares x > t for these thresholds (as f32 literals).
        float[] thresholds =
        [
            -0.8480964004993439f, -0.6106329262256622f, -0.4599952697753906f, -0.33967943489551544f, -0.23460740596055984f,
            -0.13791173323988914f, -0.045525018125772476f, 0.03979014977812767f, 0.1202552504837513f, 0.2035212516784668f,
            0.2920137718319893f, 0.3893125355243683f, 0.5016634166240692f, 0.6427869200706482f, 0.8614784181118011f,
        ];
        // Each lies within one unit in the last place of the f32 midpoint of its two codes.
        for (var i = 0; i < 15; i++)
            Math.Abs(thresholds[i] - (Nf4.Codes[i] + Nf4.Codes[i + 1]) / 2f).Should().BeLessThanOrEqualTo(MathF.BitIncrement(Math.Abs(thresholds[i])) - Math.Abs(thresholds[i]));
        for (var i = 0; i < 15; i++)
        {
            Nf4.NearestCode(thresholds[i]).Should().Be(i, "x equal to a threshold is not above it");
            Nf4.NearestCode(MathF.BitIncrement(thresholds[i])).Should().Be(i + 1);
        }
    }

    [Fact]
    public void The_dynamic_map_is_bitsandbytes_signed_8_bit_map()
    {
        // create_dynamic_map(signed=True): for i = 0..6, ±10^(i−6) × the midpoints of linspace(0.1, 1, 2^i + 1); plus 0, 1.
        var expected = new List<double> { 0, 1 };
        for (var i = 0; i < 7; i++)
            for (var j = 0; j < 1 << i; j++)
            {
                var mid = 0.1 + 0.9 * (j + 0.5) / (1 << i);
                expected.Add(Math.Pow(10, i - 6) * mid);
                expected.Add(-Math.Pow(10, i - 6) * mid);
            }
        expected.Sort();
        var map = DynamicMap.Codes;
        map.Should().HaveCount(256);
        for (var k = 0; k < 256; k++) map[k].Should().BeApproximately((float)expected[k], 2e-7f * Math.Max(1e-6f, Math.Abs((float)expected[k])) + 1e-13f, $"entry {k}");
        map[127].Should().Be(0f);
        map[255].Should().Be(1f);
        for (var k = 0; k < 127; k++) map[k].Should().Be(-map[254 - k], "the negative half mirrors the positive one");
    }

    [Fact]
    public void Double_quantization_follows_bitsandbytes_compress_statistics()
    {
        // Four blocks of 64 whose absmax are 1, 2, 3, 4 (one value each, the rest 0). By hand, as bitsandbytes:
        // offset = mean = 2.5; centred = [-1.5, -0.5, 0.5, 1.5]; one group of 256 with absmax s = 1.5;
        // scaled = [-1, -1/3, 1/3, 1]. Map: 1 is entry 255; -1 is nearest to the smallest entry, -0.99296875 (index 0);
        // 1/3 falls in the i = 6 group (0.1 + 0.9·(j + ½)/64): j = 16 gives 0.33203125, nearer than j = 17 (0.34609375),
        // at index 127 + 1 + (1 + 2 + … + 32) + 16 = 207, and -1/3 at its mirror 254 − 207 = 47.
        var values = new float[256];
        for (var b = 0; b < 4; b++) values[b * 64 + 5] = b + 1;
        using var w = tensor(values).reshape(4, 64);
        var q = Nf4.Quantize(w, doubleQuant: true);
        q.AbsmaxOffset.Should().Be(2.5f);
        q.AbsmaxScales.Should().Equal(1.5f);
        q.AbsmaxCodes.Should().Equal(0, 47, 207, 255);
        // Dequantized constants: map[q]·s + offset, in f32.
        q.BlockAbsmax(1).Should().Be(2.5f - 0.33203125f * 1.5f);
        q.BlockAbsmax(3).Should().Be(4f);
        q.StorageBytes.Should().Be(128 + 4 + 4 + 4); // codes, one byte per block, one scale, the offset
        // The 4-bit codes do not depend on double quantization: each block's absmax maps to code 15, zeros to 7.
        q.Packed[(64 + 5) / 2].Should().Be(0x7F); // value 69 is odd: the low nibble
        q.Packed.Should().Equal(Nf4.Quantize(w, doubleQuant: false).Packed);
    }

    [Fact]
    public void Double_quantized_constants_are_within_half_a_map_step_of_the_absmax()
    {
        using var g = new Generator(3);
        using var w = randn(new long[] { 600, 64 }, generator: g).mul(rand(new long[] { 600, 1 }, generator: g).mul(Scalars.Of(3)).add(Scalars.Of(0.1), Scalars.One)); // 600 blocks, 3 groups of 256
        var exact = Nf4.Quantize(w, doubleQuant: false);
        var dq = Nf4.Quantize(w, doubleQuant: true);
        dq.AbsmaxScales!.Length.Should().Be(3);
        dq.Packed.Should().Equal(exact.Packed);
        dq.AbsmaxOffset.Should().BeApproximately((float)exact.Absmax!.Average(a => (double)a), 1e-5f);
        // The widest step of the map is 0.9/64 (the i = 6 group) and the last one, 1 − 0.99296875: half of either is < 0.0071.
        for (var b = 0; b < 600; b++)
            Math.Abs(dq.BlockAbsmax(b) - exact.Absmax![b]).Should().BeLessThanOrEqualTo(dq.AbsmaxScales[b / 256] * 0.0071f + 1e-6f);
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
        // 3840 values: 1920 bytes of codes + 60 blocks of constants (a byte each and one group scale and the offset, or f32 each).
        nf4.WeightStorageBytes.Should().Be(doubleQuant ? 1920 + 60 + 4 + 4 : 1920 + 240);
        nf4.parameters().Should().OnlyContain(p => !p.requires_grad);
        // Error of NF4 itself: at most half the widest code gap (1 - 0.696 = 0.304) × absmax per value (+ absmax error).
        TensorAssert.MaxAbsDiff(dense, linear.weight).Should().BeLessThan(0.16f * TensorAssert.Values(linear.weight).Max(Math.Abs));
    }

    [Fact]
    public void An_NF4_layer_holds_its_codes_and_nothing_dense()
    {
        // A 1024 × 1024 weight, by hand: 2^20 values → 2^19 bytes of 4-bit codes; 2^14 blocks of 64 → one byte each;
        // 64 groups of 256 blocks → 64 f32 scales; one f32 offset; plus the f32 bias of 1024.
        torch.manual_seed(7);
        var linear = nn.Linear(1024, 1024);
        var weight = linear.weight;
        var layers = new TwoLayers(linear);
        QLora.Quantize(layers, ModuleTargets.Suffixes("first"));
        weight.IsInvalid.Should().BeTrue("the replaced f32 weight is disposed at once, not left to the GC");
        var nf4 = (Nf4Linear)layers.First;
        long held = nf4.buffers().Concat(nf4.parameters()).Sum(t => t.NumberOfElements * t.ElementSize);
        held.Should().Be(524_288 + 16_384 + 64 * 4 + 4 + 1024 * 4);
        (8.0 * (held - 4096) / (1024 * 1024)).Should().BeApproximately(4.127, 0.001); // bits per weight
        layers.Dispose();
    }

    [Fact]
    public void Backward_dequantizes_again_instead_of_keeping_the_dense_weight()
    {
        torch.manual_seed(8);
        using var linear = nn.Linear(64, 32);
        using var nf4 = Nf4Linear.FromLinear(linear);
        using var x = randn(5, 64).requires_grad_(true);
        using var y = nf4.forward(x);
        using var dense = nf4.DenseWeight();
        using var expectedY = nn.functional.linear(x, dense, nf4.Bias);
        TensorAssert.MaxAbsDiff(y, expectedY).Should().Be(0f);

        // Change the codes between forward and backward: a backward that kept the forward's f32 weight would not see it.
        using (no_grad()) nf4.named_buffers().Single(b => b.name == "weight_packed").buffer.fill_(Scalars.Of(0x11));
        using var changed = nf4.DenseWeight();
        using var g = randn(5, 32);
        y.backward([g]);
        using var expectedGrad = g.matmul(changed);
        TensorAssert.MaxAbsDiff(x.grad!, expectedGrad).Should().BeLessThan(1e-6f);
        using var old = g.matmul(dense);
        TensorAssert.MaxAbsDiff(x.grad!, old).Should().BeGreaterThan(1e-3f);
    }

    private sealed class TwoLayers : nn.Module<Tensor, Tensor>
    {
        private nn.Module<Tensor, Tensor> first;
        public nn.Module<Tensor, Tensor> First => first;

        public TwoLayers(nn.Module<Tensor, Tensor> layer) : base(nameof(TwoLayers))
        {
            first = layer;
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => first.call(x);
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
        // Like bitsandbytes' load_in_4bit, every projection is quantized, not only LoRA's targets: q, k, v, o [8, 8] and
        // gate, up [16, 8], down [8, 16] in two layers; lm_head stays f32.
        f32Bytes.Should().Be(2 * 4 * (4 * 8 * 8 + 3 * 16 * 8));
        model.model.layers[0].self_attn.k_proj.Should().BeOfType<Nf4Linear>();
        model.lm_head.Should().BeOfType<Linear>();
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
