using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Tests;

public sealed class TorchSmokeTests
{
    [Fact]
    public void TorchSharp_computes_inside_the_test_process()
    {
        using var a = tensor(new float[] { 1, 2, 3, 4 }).reshape(2, 2);
        using var b = tensor(new float[] { 5, 6, 7, 8 }).reshape(2, 2);
        using var c = matmul(a, b);
        c.data<float>().ToArray().Should().Equal(19f, 22f, 43f, 50f);
    }
}
