using Forgetless.Model;
using Forgetless.Tests.Model.Fixtures;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Tests.Model;

/// <summary>
/// Rows that hold more than one sequence (<see cref="TokenLayout"/>): packed documents and shared-context branches
/// compute exactly what each sequence computes alone, and the attention paths run on the meta device.
/// </summary>
public sealed class PackedAttentionTests
{
    private static CausalLM Create(string type) => ModelFactory.Create(
        ModelConfig.FromJson(TinyCheckpoints.Create(new TinySpec(type, Heads: 4, KvHeads: type == "gpt2" ? 4 : 2)).ConfigJson), seed: 5);

    [Fact]
    public void Positions_restart_with_each_document_and_padding_forms_its_own_block()
    {
        using var segments = tensor(new long[] { 1, 1, 1, 2, 2, 0, 0 }, [1, 7]);
        using var layout = TokenLayout.Documents(segments);
        layout.Positions.data<long>().ToArray().Should().Equal(0, 1, 2, 0, 1, 0, 1);
        var visible = layout.Visible.data<bool>().ToArray();
        bool Sees(int q, int k) => visible[q * 7 + k];
        Sees(4, 3).Should().BeTrue();
        Sees(4, 2).Should().BeFalse("the second document does not see the first");
        Sees(2, 3).Should().BeFalse("nor the future");
        Sees(6, 5).Should().BeTrue();
        Sees(5, 4).Should().BeFalse();
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("gpt2")]
    public void Each_packed_document_gives_the_logits_it_gives_alone(string type)
    {
        using var model = Create(type);
        using var _ = no_grad();
        long[] first = [4, 2, 9, 7, 1], second = [3, 8, 5, 6];
        long[] packed = [.. first, .. second, 0, 0];
        using var segments = tensor(new long[] { 1, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0 }, [1, packed.Length]);
        using var layout = TokenLayout.Documents(segments);
        using var together = model.Forward(LogitsAssert.Ids(packed), layout: layout);
        using var aloneFirst = model.Forward(LogitsAssert.Ids(first));
        using var aloneSecond = model.Forward(LogitsAssert.Ids(second));
        LogitsAssert.Close(together.narrow(1, 0, first.Length), aloneFirst, 1e-5);
        LogitsAssert.Close(together.narrow(1, first.Length, second.Length), aloneSecond, 1e-5);

        // Without the layout the second document sees the first: the check above can fail.
        using var crossing = model.Forward(LogitsAssert.Ids(packed));
        using var diff = (crossing.narrow(1, first.Length, second.Length) - aloneSecond).abs().max();
        diff.item<float>().Should().BeGreaterThan(1e-3f);
    }

    [Fact]
    public void Continuations_that_share_a_context_in_one_row_each_score_as_alone()
    {
        using var model = Create("llama");
        using var _ = no_grad();
        long[] context = [4, 2, 9], a = [7, 1], b = [3, 8, 5];
        // One row: context, then a, then b; a and b each see the context and themselves, numbered after the context.
        long[] row = [.. context, .. a, .. b];
        var positions = new long[] { 0, 1, 2, 3, 4, 3, 4, 5 };
        int n = row.Length;
        var visible = new bool[n * n];
        int[] branch = [0, 0, 0, 1, 1, 2, 2, 2];
        for (int q = 0; q < n; q++)
            for (int k = 0; k <= q; k++)
                visible[q * n + k] = branch[k] == 0 || branch[k] == branch[q];
        using var layout = TokenLayout.FromArrays(positions, visible, 1, n, CPU);
        using var together = model.Forward(LogitsAssert.Ids(row), layout: layout);
        using var withA = model.Forward(LogitsAssert.Ids([.. context, .. a]));
        using var withB = model.Forward(LogitsAssert.Ids([.. context, .. b]));
        LogitsAssert.Close(together.narrow(1, 0, 5), withA, 1e-5);
        LogitsAssert.Close(together.narrow(1, 5, 3), withB.narrow(1, 3, 3), 1e-5);
    }

    [Fact]
    public void Every_attention_path_runs_on_the_meta_device()
    {
        // libtorch has no meta kernel for the fused attention; the hand-written path stands in there. (The model as a
        // whole does not run on meta: the embedding lookup has no meta kernel either.)
        using var scope = NewDisposeScope();
        Tensor Heads(long t) => zeros(2, 4, t, 8, device: META);
        var ids = zeros(2, 5, ScalarType.Int64, device: META);
        var plain = AttentionContext.Create(ids, null, null, null, null);
        plain.Attend(0, Heads(5), Heads(5), Heads(5)).shape.Should().Equal(2, 4, 5, 8);

        using var cache = new KvCache(1);
        var prompt = AttentionContext.Create(ids, ones(2, 5, ScalarType.Int64, device: META), cache, null, null);
        prompt.Attend(0, Heads(5), zeros(2, 2, 5, 8, device: META), zeros(2, 2, 5, 8, device: META)).device.type.Should().Be(DeviceType.META);
        cache.Advance(prompt.FullMask!);
        var step = AttentionContext.Create(zeros(2, 1, ScalarType.Int64, device: META), ones(2, 1, ScalarType.Int64, device: META), cache, null, null);
        step.Attend(0, Heads(1), zeros(2, 2, 1, 8, device: META), zeros(2, 2, 1, 8, device: META)).shape.Should().Equal(2, 4, 1, 8);

        using var layout = TokenLayout.Documents(zeros(2, 5, ScalarType.Int64, device: META));
        var packed = AttentionContext.Create(ids, null, null, null, layout);
        packed.Positions.device.type.Should().Be(DeviceType.META);
        packed.Attend(0, Heads(5), Heads(5), Heads(5)).device.type.Should().Be(DeviceType.META);
    }
}
