using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Peft;

/// <summary>
/// A frozen linear layer whose weight is held as NF4 codes (see <see cref="Nf4Tensor"/>): packed codes and the
/// quantization constants are buffers; each forward dequantizes the weight to f32 inside a dispose scope
/// (on a CPU there is no fused 4-bit kernel) and runs an ordinary matmul. The bias stays f32 and frozen.
/// </summary>
public sealed class Nf4Linear : nn.Module<Tensor, Tensor>, IFrozenLinear
{
    private readonly Tensor weight_packed;       // uint8 [ceil(n/2)]
    private readonly Tensor weight_absmax;       // f32 [blocks] (no double quant) or int8 codes [blocks]
    private readonly Tensor? weight_absmax_scales; // f32 [groups] (double quant)
    private readonly Tensor? weight_absmax_mean;   // f32 [1] (double quant)
    public readonly Parameter? bias;

    private static readonly Tensor CodeBook = tensor(Nf4.Codes).DetachFromDisposeScope();
    private readonly long count;
    private readonly int blocks;

    public long InFeatures { get; }
    public long OutFeatures { get; }
    public bool DoubleQuantized { get; }

    /// <summary>Bytes of the quantized weight (codes and constants), excluding the bias.</summary>
    public long WeightStorageBytes { get; }

    /// <summary>Bytes the same weight takes in f32.</summary>
    public long DenseF32Bytes => 4 * InFeatures * OutFeatures;

    public Nf4Linear(Nf4Tensor weight, Tensor? bias = null) : base(nameof(Nf4Linear))
    {
        if (weight.Shape.Length != 2) throw new ArgumentException("Nf4Linear needs a 2-D [out, in] weight.");
        OutFeatures = weight.Shape[0];
        InFeatures = weight.Shape[1];
        count = weight.Count;
        blocks = weight.Blocks;
        DoubleQuantized = weight.DoubleQuantized;
        WeightStorageBytes = weight.StorageBytes;
        weight_packed = tensor(weight.Packed, ScalarType.Byte);
        if (weight.DoubleQuantized)
        {
            weight_absmax = tensor(weight.AbsmaxQuantized!);
            weight_absmax_scales = tensor(weight.AbsmaxScales!);
            weight_absmax_mean = tensor(new[] { weight.AbsmaxMean });
        }
        else
        {
            weight_absmax = tensor(weight.Absmax!);
        }
        if (bias is not null) this.bias = new Parameter(bias.detach().clone().DetachFromDisposeScope(), requires_grad: false);
        RegisterComponents();
        ModuleSeed.DetachFromScopes(this);
    }

    /// <summary>Quantizes a Linear's weight (the Linear itself is left untouched).</summary>
    public static Nf4Linear FromLinear(Linear linear, bool doubleQuant = true) =>
        new(Nf4.Quantize(linear.weight, doubleQuant), linear.bias);

    public Tensor? Bias => bias;
    public bool SupportsMerge => false;
    public void AddToWeight(Tensor delta) =>
        throw new InvalidOperationException("An NF4 weight cannot be changed in place; dequantize it first.");

    /// <summary>The f32 weight [out, in] = code × absmax, computed block by block with tensor ops.</summary>
    public Tensor DenseWeight()
    {
        using var scope = NewDisposeScope();
        var high = weight_packed.bitwise_right_shift(4);
        var low = weight_packed.bitwise_and(0x0F);
        var idx = stack(new[] { high, low }, 1).reshape(-1).to(ScalarType.Int64);
        var padded = blocks * (long)Nf4.BlockSize;
        var values = CodeBook.index_select(0, idx);
        values = values.shape[0] >= padded ? values.narrow(0, 0, padded) : nn.functional.pad(values, new[] { 0L, padded - values.shape[0] });
        Tensor absmax;
        if (DoubleQuantized)
        {
            var perGroup = weight_absmax_scales!.div(127f);
            var perBlock = perGroup.repeat_interleave(Nf4.ConstantBlockSize).narrow(0, 0, blocks);
            absmax = weight_absmax.to(ScalarType.Float32).mul(perBlock).add(weight_absmax_mean!);
        }
        else
        {
            absmax = weight_absmax;
        }
        var w = values.reshape(blocks, Nf4.BlockSize).mul(absmax.unsqueeze(1)).reshape(-1).narrow(0, 0, count);
        return w.reshape(OutFeatures, InFeatures).MoveToOuterDisposeScope();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return nn.functional.linear(x, DenseWeight(), bias).MoveToOuterDisposeScope();
    }
}

/// <summary>QLoRA: quantize the targets to NF4, then put LoRA on top of the quantized bases.</summary>
public static class QLora
{
    /// <summary>Replaces every target Linear by an <see cref="Nf4Linear"/>; returns the paths.</summary>
    public static IReadOnlyList<string> Quantize(nn.Module model, ModuleTargets targets, bool doubleQuant = true) =>
        AdapterInjector.Inject(model, targets, (path, original) => original switch
        {
            Linear linear => Nf4Linear.FromLinear(linear, doubleQuant),
            _ => throw new InvalidOperationException($"Module '{path}' is a {original.GetType().Name}; only a Linear can be quantized."),
        });

    /// <summary>Bytes of all NF4 weights in the model and what they would take in f32 (for the run report).</summary>
    public static (long nf4Bytes, long f32Bytes) WeightBytes(nn.Module model)
    {
        long q = 0, f = 0;
        foreach (var (_, m) in model.named_modules())
            if (m is Nf4Linear n) { q += n.WeightStorageBytes; f += n.DenseF32Bytes; }
        return (q, f);
    }

    /// <summary>Quantize the targets, then wrap them with LoRA; returns the adapted paths.</summary>
    public static IReadOnlyList<string> Apply(nn.Module model, ModuleTargets targets, LoraOptions options, bool doubleQuant = true)
    {
        Quantize(model, targets, doubleQuant);
        return Lora.Apply(model, targets, options);
    }
}
