using Forgetless.Model;
using Forgetless.Model.Devices;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Peft;

/// <summary>
/// A LoRA layer that keeps the blocks earlier tasks trained, frozen, beside a new trainable block (O-LoRA, Wang et al.
/// 2023): y = base(x) + B_prev·A_prev·x + s·B·A·x, where A_prev [r_prev, in] and B_prev [out, r_prev] (scaling folded in)
/// are buffers and A, B train as in plain LoRA (A kaiming-uniform, B zero: a fresh block changes nothing). The
/// orthogonality term keeps A's rows away from the subspace A_prev spans, so the new task writes where earlier tasks did
/// not. Saved as one plain LoRA of rank r_prev + r.
/// </summary>
public sealed class OLoraLinear : nn.Module<Tensor, Tensor>, IAdapterLayer
{
    public readonly nn.Module<Tensor, Tensor> base_layer;
    public readonly Linear lora_A;
    public readonly Linear lora_B;
    // Held in a plain object so TorchSharp does not register them as buffers: SetPrevious replaces them with other shapes.
    private readonly Previous previous;

    private sealed class Previous(Tensor a, Tensor b)
    {
        public Tensor A = a;
        public Tensor B = b;

        /// <summary>
        /// Moves the blocks to <paramref name="device"/> (where the trained block is). Placement moves registered
        /// parameters and buffers only, so these follow the layer's own A on first use after a move.
        /// </summary>
        public void FollowTo(Device device)
        {
            if (A.device == device) return;
            var (a, b) = (A.to(device).DetachFromDisposeScope(), B.to(device).DetachFromDisposeScope());
            A.Dispose();
            B.Dispose();
            (A, B) = (a, b);
        }
    }

    // Not a field: TorchSharp registers every Module-valued field, and an Nf4Linear base would be registered twice.
    private IFrozenLinear frozen => FrozenLinear.Of(base_layer);

    public double Scaling { get; }
    private readonly Scalar scaling; // held for every forward (Scalars.cs says why)

    public OLoraLinear(nn.Module<Tensor, Tensor> baseLayer, LoraOptions options, string modulePath = "") : base(nameof(OLoraLinear))
    {
        options.Validate();
        base_layer = baseLayer;
        foreach (var p in baseLayer.parameters()) p.requires_grad = false;
        long inF = frozen.InFeatures, outF = frozen.OutFeatures;
        Scaling = options.Scaling;
        scaling = Scaling.ToScalar();
        (lora_A, lora_B) = LoraLinear.NewBlock(inF, outF, options, modulePath);
        previous = new Previous(zeros(new long[] { 0, inF }).DetachFromDisposeScope(), zeros(new long[] { outF, 0 }).DetachFromDisposeScope());
        RegisterComponents();
        ModuleSeed.DetachFromScopes(this);
    }

    /// <summary>The frozen earlier blocks: A [r_prev, in] and B [out, r_prev] with their scaling already multiplied in.</summary>
    public Tensor PreviousA { get { previous.FollowTo(lora_A.weight.device); return previous.A; } }
    public Tensor PreviousB { get { previous.FollowTo(lora_A.weight.device); return previous.B; } }

    public void SetPrevious(Tensor a, Tensor scaledB)
    {
        if (a.shape[1] != frozen.InFeatures || scaledB.shape[0] != frozen.OutFeatures || a.shape[0] != scaledB.shape[1])
            throw new ArgumentException($"earlier LoRA blocks of shapes [{string.Join(", ", a.shape)}] and [{string.Join(", ", scaledB.shape)}] do not fit this layer ({frozen.InFeatures} → {frozen.OutFeatures})");
        previous.A.Dispose();
        previous.B.Dispose();
        previous.A = a.detach().to(ScalarType.Float32).clone().DetachFromDisposeScope();
        previous.B = scaledB.detach().to(ScalarType.Float32).clone().DetachFromDisposeScope();
    }

    public IEnumerable<(string name, Parameter parameter)> AdapterParameters()
    {
        yield return ("lora_A.weight", lora_A.weight);
        yield return ("lora_B.weight", lora_B.weight);
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var result = MixedPrecision.Project(base_layer, x);
        // The blocks compute in their own (f32) type, as LoraLinear's; their sum joins the base's output in the
        // activations' type.
        var input = MixedPrecision.As(x, lora_A.weight.dtype);
        var update = lora_B.forward(lora_A.forward(input)).mul(scaling);
        if (PreviousA.shape[0] > 0) update = update.add(input.matmul(PreviousA.t()).matmul(PreviousB.t()), Scalars.One);
        return result.add(MixedPrecision.As(update, result.dtype), Scalars.One).MoveToOuterDisposeScope();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) { previous.A.Dispose(); previous.B.Dispose(); }
        base.Dispose(disposing);
    }
}
