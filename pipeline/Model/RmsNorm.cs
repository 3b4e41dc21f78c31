using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Model;

/// <summary>Root-mean-square norm (Llama): x / sqrt(mean(x^2) + eps) * weight, no mean subtraction, no bias.</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;

    // Held for the module's life: a Scalar made on the fly for `variance + eps` is a temporary whose finalizer may free
    // its native value while libtorch still reads it (the JIT may end its lifetime once its handle is passed), which
    // showed up as a rare "Scalar::toFloat: Expected false to be true" inside add.
    private readonly Scalar eps;

    public RmsNorm(long size, double eps) : base(nameof(RmsNorm))
    {
        this.eps = eps.ToScalar();
        weight = new Parameter(ones(size));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var variance = x.pow(2).mean([-1], keepdim: true);
        return (x * rsqrt(variance.add(eps)) * weight).MoveToOuterDisposeScope();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) eps.Dispose();
        base.Dispose(disposing);
    }
}
