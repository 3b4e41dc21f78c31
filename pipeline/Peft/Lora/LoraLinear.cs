using Forgetless.Model;
using Forgetless.Model.Devices;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Peft;

/// <summary>LoRA hyper-parameters (PEFT's LoraConfig names in comments).</summary>
public sealed record LoraOptions
{
    /// <summary><c>r</c>: rank of the update.</summary>
    public int R { get; init; } = 8;
    /// <summary><c>lora_alpha</c>.</summary>
    public double Alpha { get; init; } = 8;
    /// <summary><c>lora_dropout</c>, applied to the adapter's input only; drawn from a per-module generator (see <see cref="SeededDropout"/>).</summary>
    public double Dropout { get; init; }
    /// <summary><c>use_rslora</c>: scaling alpha/sqrt(r) instead of alpha/r.</summary>
    public bool UseRsLora { get; init; }
    /// <summary><c>use_dora</c>: weight-decomposed LoRA with a magnitude vector per output feature.</summary>
    public bool UseDora { get; init; }
    /// <summary>Seed of lora_A's initial values and of the dropout generator (mixed with each module path).</summary>
    public long Seed { get; init; }

    public double Scaling => UseRsLora ? Alpha / Math.Sqrt(R) : Alpha / R;

    public void Validate()
    {
        if (R <= 0) throw new ArgumentException($"LoRA rank r must be positive, got {R}.");
        if (Dropout is < 0 or >= 1) throw new ArgumentException($"lora_dropout must be in [0, 1), got {Dropout}.");
    }
}

/// <summary>
/// LoRA (and DoRA) around a frozen base projection:
/// y = base(x) + B(A(dropout(x))) * scaling. With DoRA (PEFT's formulation, norm detached):
/// y = base(x) + (m/‖W + s·BA‖ − 1)·W·x' + (m/‖W + s·BA‖)·s·B(A(x')), where x' is the dropped-out input
/// and ‖·‖ is the L2 norm of each output row; at init m = ‖W‖ and B = 0, so nothing changes.
/// Field names match PEFT's module names, so parameter paths read <c>...q_proj.lora_A.weight</c>.
/// </summary>
public sealed class LoraLinear : nn.Module<Tensor, Tensor>, IAdapterLayer
{
    public readonly nn.Module<Tensor, Tensor> base_layer;
    public readonly Linear lora_A;
    public readonly Linear lora_B;
    private readonly nn.Module<Tensor, Tensor> lora_dropout;
    public readonly Parameter? lora_magnitude_vector;

    // Not a field: TorchSharp registers every Module-valued field, and an Nf4Linear base would be registered twice.
    private IFrozenLinear frozen => FrozenLinear.Of(base_layer);
    private readonly double dropoutP;
    private Tensor? mergedRowNorm; // DoRA: the norm used by Merge, needed to undo it exactly

    public LoraOptions Options { get; }
    public double Scaling { get; }
    private readonly Scalar scaling; // held for every forward (Scalars.cs says why)
    public bool Merged { get; private set; }
    public bool UsesDora => lora_magnitude_vector is not null;

    /// <summary>
    /// A fresh LoRA block as PEFT initialises one: A [r, in] from kaiming_uniform(a = √5) seeded by the module path,
    /// B [out, r] zero (so the block starts as a no-op). O-LoRA's new block per task is made the same way.
    /// </summary>
    internal static (Linear A, Linear B) NewBlock(long inF, long outF, LoraOptions options, string modulePath)
    {
        var a = nn.Linear(inF, options.R, hasBias: false);
        var b = nn.Linear(options.R, outF, hasBias: false);
        using (no_grad())
        {
            using var g = new Generator(ModuleSeed.For(options.Seed, modulePath));
            using var init = ModuleSeed.KaimingUniformA5(options.R, inF, g);
            a.weight.copy_(init);
            b.weight.zero_();
        }
        return (a, b);
    }

    /// <param name="baseLayer">A Linear or an <see cref="IFrozenLinear"/> module; its parameters are frozen.</param>
    /// <param name="modulePath">The module path, mixed into the seed.</param>
    public LoraLinear(nn.Module<Tensor, Tensor> baseLayer, LoraOptions options, string modulePath = "") : base(nameof(LoraLinear))
    {
        options.Validate();
        Options = options;
        Scaling = options.Scaling;
        scaling = Scaling.ToScalar();
        base_layer = baseLayer;
        _ = FrozenLinear.Of(baseLayer); // throws for a base that is neither Linear nor IFrozenLinear
        foreach (var p in baseLayer.parameters()) p.requires_grad = false;

        long inF = frozen.InFeatures, outF = frozen.OutFeatures;
        (lora_A, lora_B) = NewBlock(inF, outF, options, modulePath);
        dropoutP = options.Dropout;
        lora_dropout = options.Dropout > 0
            ? new SeededDropout(options.Dropout, ModuleSeed.For(options.Seed, modulePath + "#lora_dropout"))
            : nn.Identity();

        if (options.UseDora)
        {
            using var _ = no_grad();
            using var norm = RowNorm(includeLora: true);
            lora_magnitude_vector = new Parameter(norm.clone().DetachFromDisposeScope(), requires_grad: true);
        }
        RegisterComponents();
        ModuleSeed.DetachFromScopes(this);
    }

    public IEnumerable<(string name, Parameter parameter)> AdapterParameters()
    {
        yield return ("lora_A.weight", lora_A.weight);
        yield return ("lora_B.weight", lora_B.weight);
        if (lora_magnitude_vector is not null) yield return ("lora_magnitude_vector", lora_magnitude_vector);
    }

    public IFrozenLinear Base => frozen;

    public override Tensor forward(Tensor x)
    {
        if (Merged) return MixedPrecision.Project(base_layer, x);
        using var scope = NewDisposeScope();
        var result = MixedPrecision.Project(base_layer, x);
        // The adapter computes in its own (f32) type, as PEFT's LoRA layer casts its input; its output joins the
        // base's in the activations' type.
        var dropped = lora_dropout.forward(MixedPrecision.As(x, lora_A.weight.dtype));
        var lora = MixedPrecision.As(lora_B.forward(lora_A.forward(dropped)), result.dtype);
        if (lora_magnitude_vector is null)
            return result.add(lora, alpha: scaling).MoveToOuterDisposeScope();

        Tensor norm;
        using (no_grad()) norm = RowNorm(includeLora: true); // detached, as in the DoRA paper (section 4.3) and PEFT
        var magScale = lora_magnitude_vector.div(norm);
        Tensor baseNoBias;
        if (dropoutP == 0 || !training)
            baseNoBias = frozen.Bias is { } b ? result.sub(MixedPrecision.As(b, result.dtype)) : result;
        else
            baseNoBias = frozen.Project(MixedPrecision.As(dropped, result.dtype));
        var dora = magScale.sub(Scalars.One).mul(baseNoBias).add(magScale.mul(lora).mul(scaling), Scalars.One);
        return result.add(MixedPrecision.As(dora, result.dtype), Scalars.One).MoveToOuterDisposeScope();
    }

    /// <summary>s·B·A, shape [out, in].</summary>
    public Tensor DeltaWeight() => lora_B.weight.matmul(lora_A.weight).mul(scaling);

    /// <summary>L2 norm of each output row of W (+ s·BA).</summary>
    private Tensor RowNorm(bool includeLora)
    {
        using var scope = NewDisposeScope();
        var w = frozen.DenseWeight();
        // In f32 where the base is (a fresh adapter is made on the CPU and placed with the rest afterwards).
        if (includeLora) w = w.to(ScalarType.Float32).add(DeltaWeight().to(w.device), Scalars.One);
        return w.Squared().sum(1).sqrt().MoveToOuterDisposeScope();
    }

    /// <summary>Folds the adapter into the base weight (W += s·BA; DoRA: W ← m/‖W + s·BA‖ · (W + s·BA)).</summary>
    public void Merge()
    {
        if (Merged) return;
        if (!frozen.SupportsMerge)
            throw new InvalidOperationException(
                $"Cannot merge into a {base_layer.GetType().Name} base: the weight is quantized. Dequantize the base first.");
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var delta = DeltaWeight();
        if (lora_magnitude_vector is null)
        {
            frozen.AddToWeight(delta);
        }
        else
        {
            var w = frozen.DenseWeight().clone();
            var combined = w.add(delta, Scalars.One);
            var norm = combined.Squared().sum(1).sqrt();
            var merged = combined.mul(lora_magnitude_vector.div(norm).unsqueeze(1));
            frozen.AddToWeight(merged.sub(w));
            mergedRowNorm = norm.DetachFromDisposeScope();
        }
        Merged = true;
    }

    /// <summary>Undoes <see cref="Merge"/> (up to f32 rounding).</summary>
    public void Unmerge()
    {
        if (!Merged) return;
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var delta = DeltaWeight();
        if (lora_magnitude_vector is null)
        {
            frozen.AddToWeight(delta.neg());
        }
        else
        {
            var merged = frozen.DenseWeight().clone();
            var original = merged.mul(mergedRowNorm!.div(lora_magnitude_vector).unsqueeze(1)).sub(delta);
            frozen.AddToWeight(original.sub(merged));
            mergedRowNorm!.Dispose();
            mergedRowNorm = null;
        }
        Merged = false;
    }
}

/// <summary>Puts LoRA (or DoRA) on the target modules of a model.</summary>
public static class Lora
{
    /// <summary>Wraps every target in a <see cref="LoraLinear"/>; returns the adapted module paths.</summary>
    public static IReadOnlyList<string> Apply(nn.Module model, ModuleTargets targets, LoraOptions options)
    {
        options.Validate();
        return AdapterInjector.Inject(model, targets, (path, original) => new LoraLinear(original, options, path));
    }

    public static void MergeAll(nn.Module model)
    {
        foreach (var (_, layer) in AdapterLayers.Find(model))
            if (layer is LoraLinear l) l.Merge();
    }

    public static void UnmergeAll(nn.Module model)
    {
        foreach (var (_, layer) in AdapterLayers.Find(model))
            if (layer is LoraLinear l) l.Unmerge();
    }
}
