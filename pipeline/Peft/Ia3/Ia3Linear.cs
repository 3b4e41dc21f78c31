using Forgetless.Model.Devices;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Peft;

/// <summary>
/// (IA)³ (Liu et al. 2022, "Few-Shot Parameter-Efficient Fine-Tuning is Better and Cheaper than In-Context Learning")
/// around a frozen projection: a learned vector <c>ia3_l</c> rescales the projection's output, or — for a feed-forward
/// module, as in the paper's MLP — its input. Shapes and initial values are PEFT's: [out, 1] or [1, in], all ones, so a
/// fresh layer changes nothing.
/// <code>
///   attention (k, v):  y = (W·x + b) ⊙ l          l: [out, 1]
///   feed-forward:      y = W·(x ⊙ l) + b          l: [1, in]
/// </code>
/// </summary>
public sealed class Ia3Linear : nn.Module<Tensor, Tensor>, IAdapterLayer
{
    public readonly nn.Module<Tensor, Tensor> base_layer;
    public readonly Parameter ia3_l;

    // Not a field: TorchSharp registers every Module-valued field, and an Nf4Linear base would be registered twice.
    private IFrozenLinear frozen => FrozenLinear.Of(base_layer);

    public bool IsFeedforward { get; }
    public bool Merged { get; private set; }

    public Ia3Linear(nn.Module<Tensor, Tensor> baseLayer, bool isFeedforward) : base(nameof(Ia3Linear))
    {
        base_layer = baseLayer;
        _ = FrozenLinear.Of(baseLayer); // throws for a base that is neither Linear nor IFrozenLinear
        foreach (var p in baseLayer.parameters()) p.requires_grad = false;
        IsFeedforward = isFeedforward;
        long[] shape = isFeedforward ? [1, frozen.InFeatures] : [frozen.OutFeatures, 1];
        ia3_l = new Parameter(ones(shape).DetachFromDisposeScope(), requires_grad: true);
        RegisterComponents();
        ModuleSeed.DetachFromScopes(this);
    }

    public IEnumerable<(string name, Parameter parameter)> AdapterParameters()
    {
        yield return ("ia3_l", ia3_l);
    }

    public override Tensor forward(Tensor x)
    {
        if (Merged) return MixedPrecision.Project(base_layer, x);
        using var scope = NewDisposeScope();
        var scale = MixedPrecision.As(ia3_l.flatten(), x.dtype);
        var y = IsFeedforward ? MixedPrecision.Project(base_layer, x.mul(scale)) : MixedPrecision.Project(base_layer, x).mul(scale);
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>Folds the vector into the weight (and, for an output scaling, the bias) as PEFT's merge does.</summary>
    public void Merge()
    {
        if (Merged) return;
        if (!frozen.SupportsMerge)
            throw new InvalidOperationException($"Cannot merge into a {base_layer.GetType().Name} base: the weight is quantized.");
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var w = frozen.DenseWeight();
        frozen.AddToWeight(w.mul(ia3_l).sub(w)); // [out, in] ⊙ [out, 1] scales rows; ⊙ [1, in] scales columns
        if (!IsFeedforward && frozen.Bias is { } bias) bias.mul_(ia3_l.flatten());
        Merged = true;
    }
}

/// <summary>Puts (IA)³ on the target modules of a model.</summary>
public static class Ia3
{
    /// <summary>
    /// Wraps every target in an <see cref="Ia3Linear"/>; a module whose path ends with one of
    /// <paramref name="feedforward"/> (PEFT's test: a plain suffix) or fully matches it as a regex scales its input.
    /// </summary>
    public static IReadOnlyList<string> Apply(nn.Module model, ModuleTargets targets, ModuleTargets feedforward) =>
        AdapterInjector.Inject(model, targets, (path, original) => new Ia3Linear(original, IsFeedforward(path, feedforward)));

    public static bool IsFeedforward(string path, ModuleTargets feedforward) => feedforward.Regex is not null
        ? System.Text.RegularExpressions.Regex.IsMatch(path, @"\A(?:" + feedforward.Regex + @")\z")
        : feedforward.Names!.Any(n => path.EndsWith(n, StringComparison.Ordinal));

    public static void MergeAll(nn.Module model)
    {
        foreach (var (_, layer) in AdapterLayers.Find(model))
            if (layer is Ia3Linear l) l.Merge();
    }
}
