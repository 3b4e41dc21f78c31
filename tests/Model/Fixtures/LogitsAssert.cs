using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Tests.Model.Fixtures;

public static class LogitsAssert
{
    /// <summary>Row b of logits [B, T, V] as [T][V].</summary>
    public static float[][] Rows(Tensor logits, int b = 0)
    {
        using var row = logits[b].contiguous();
        var flat = row.data<float>().ToArray();
        var v = (int)logits.shape[2];
        return Enumerable.Range(0, (int)logits.shape[1]).Select(t => flat[(t * v)..((t + 1) * v)]).ToArray();
    }

    public static void Close(float[][] actual, double[][] expected, double tolerance)
    {
        actual.Length.Should().Be(expected.Length);
        for (var t = 0; t < actual.Length; t++)
            for (var i = 0; i < actual[t].Length; i++)
                Math.Abs(actual[t][i] - expected[t][i]).Should().BeLessThan(tolerance, $"logit [{t}, {i}] should be {expected[t][i]} but is {actual[t][i]}");
    }

    public static void Close(Tensor actual, Tensor expected, double tolerance)
    {
        actual.shape.Should().Equal(expected.shape);
        using var diff = (actual - expected).abs().max();
        diff.item<float>().Should().BeLessThanOrEqualTo((float)tolerance);
    }

    public static Tensor Ids(params long[] ids) => tensor(ids, [1, ids.Length]);
}
