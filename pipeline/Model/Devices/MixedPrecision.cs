using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Model.Devices;

/// <summary>
/// What torch.autocast does for the few operators our models use, since TorchSharp has no autocast: activations flow in
/// the model's compute type (bf16 or f16 on a GPU, f32 on the CPU), frozen weights are stored in it, and a parameter
/// that trains stays f32 and is cast to the compute type where it is used, so its gradient arrives in f32. With f32
/// everywhere every helper is the plain operator (no cast, no copy).
/// </summary>
public static class MixedPrecision
{
    /// <summary>A projection (a Linear, or an adapter wrapping one) applied to activations <paramref name="x"/>.</summary>
    public static Tensor Project(TorchSharp.torch.nn.Module<Tensor, Tensor> layer, Tensor x)
    {
        if (layer is Linear linear && linear.weight.dtype != x.dtype)
        {
            using var w = linear.weight.to(x.dtype);
            using var b = linear.bias?.to(x.dtype);
            return nn.functional.linear(x, w, b);
        }
        return layer.call(x);
    }

    /// <summary><paramref name="x"/> · <paramref name="weight"/>ᵀ with the weight cast to the activations' type (a tied output head).</summary>
    public static Tensor Linear(Tensor x, Tensor weight)
    {
        if (weight.dtype == x.dtype) return nn.functional.linear(x, weight);
        using var w = weight.to(x.dtype);
        return nn.functional.linear(x, w);
    }

    /// <summary><paramref name="t"/> in <paramref name="type"/> (itself when it already is).</summary>
    public static Tensor As(Tensor t, ScalarType type) => t.dtype == type ? t : t.to(type);
}
