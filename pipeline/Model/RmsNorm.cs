using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Model;

/// <summary>Root-mean-square norm (Llama): x / sqrt(mean(x^2) + eps) * weight, no mean subtraction, no bias.</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly double eps;
    private readonly Parameter weight;

    public RmsNorm(long size, double eps) : base(nameof(RmsNorm))
    {
        this.eps = eps;
        weight = new Parameter(ones(size));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var variance = x.pow(2).mean([-1], keepdim: true);
        return (x * rsqrt(variance + eps) * weight).MoveToOuterDisposeScope();
    }
}
