using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Model;

/// <summary>Root-mean-square norm (Llama): x / sqrt(mean(x^2) + eps) * weight, no mean subtraction, no bias.</summary>
public sealed class RmsNorm : SingleWeightModule
{
    // Held for the module's life: a Scalar made on the fly for `variance + eps` is a temporary whose finalizer may free
    // its native value while libtorch still reads it (the JIT may end its lifetime once its handle is passed), which
    // showed up as a rare "Scalar::toFloat: Expected false to be true" inside add.
    private readonly Scalar eps;

    public RmsNorm(long size, double eps, Device? device = null) : base(nameof(RmsNorm), ones(size, device: device))
    {
        this.eps = eps.ToScalar();
    }

    /// <summary>Computed in f32 and returned in the input's type, as HF's LlamaRMSNorm does.</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = x.dtype == ScalarType.Float32 ? x : x.to(ScalarType.Float32);
        // Squared() and an explicit alpha: square() and add(Scalar) would make temporary Scalars (the exponent, alpha = 1).
        var variance = h.Squared().mean([-1], keepdim: true);
        var normed = h * rsqrt(variance.add(eps, Scalars.One));
        if (x.dtype == ScalarType.Float32 && weight.dtype == ScalarType.Float32) return (normed * weight).MoveToOuterDisposeScope();
        return (normed.to(x.dtype) * weight.to(x.dtype)).MoveToOuterDisposeScope();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) eps.Dispose();
        base.Dispose(disposing);
    }
}
