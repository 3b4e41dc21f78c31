using Forgetless.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Peft;

/// <summary>
/// A frozen base projection that an adapter can wrap: a plain <see cref="Linear"/> (through
/// <see cref="FrozenLinear.Of"/>) or a quantized store such as <see cref="Nf4Linear"/>.
/// Adapters only need the dense weight (for DoRA norms and merging) and the bias.
/// </summary>
public interface IFrozenLinear
{
    long InFeatures { get; }
    long OutFeatures { get; }

    /// <summary>The f32 weight, shape [out, in]. The caller owns the returned handle (dispose it or let a scope do it).</summary>
    Tensor DenseWeight();

    /// <summary>The bias [out], or null. Not owned by the caller.</summary>
    Tensor? Bias { get; }

    /// <summary>x·Wᵀ without the bias, keeping for backward no more than the store needs (an NF4 store keeps no f32 weight).</summary>
    Tensor Project(Tensor x);

    /// <summary>False when the weight cannot be changed in place (a quantized store).</summary>
    bool SupportsMerge { get; }

    /// <summary>W += delta, in place, without autograd. Throws when <see cref="SupportsMerge"/> is false.</summary>
    void AddToWeight(Tensor delta);
}

/// <summary>Views modules as <see cref="IFrozenLinear"/>.</summary>
public static class FrozenLinear
{
    /// <summary>True for the modules adapters can wrap: <see cref="Linear"/> and any <see cref="IFrozenLinear"/> module.</summary>
    public static bool IsLinearLike(nn.Module module) => module is Linear || module is IFrozenLinear;

    public static IFrozenLinear Of(nn.Module module) => module switch
    {
        IFrozenLinear frozen => frozen,
        Linear linear => new LinearView(linear),
        _ => throw new ArgumentException(
            $"Expected a Linear or an IFrozenLinear module, got {module.GetType().Name}.", nameof(module)),
    };

    private sealed class LinearView(Linear linear) : IFrozenLinear
    {
        public long InFeatures => linear.in_features;
        public long OutFeatures => linear.out_features;
        public Tensor DenseWeight() => linear.weight.detach();
        public Tensor? Bias => linear.bias;
        public Tensor Project(Tensor x) => nn.functional.linear(x, linear.weight);
        public bool SupportsMerge => true;

        public void AddToWeight(Tensor delta)
        {
            using var _ = no_grad();
            linear.weight.add_(delta, Scalars.One);
        }
    }
}
