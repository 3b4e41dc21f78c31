using Forgetless.Model;
using Forgetless.Model.Devices;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Peft;

/// <summary>
/// A frozen linear layer whose weight is held only as NF4 codes (see <see cref="Nf4Tensor"/>): packed codes and the
/// quantization constants are buffers. Each forward dequantizes the weight to a temporary f32 tensor for one matmul
/// (on a CPU there is no fused 4-bit kernel); autograd keeps nothing of it: <see cref="Nf4MatMul"/> dequantizes again
/// in backward for the input's gradient, as bitsandbytes' MatMul4Bit does, so training holds 4-bit weights only. The
/// bias stays f32 and frozen.
/// </summary>
public sealed class Nf4Linear : nn.Module<Tensor, Tensor>, IFrozenLinear
{
    private readonly Tensor weight_packed;          // uint8 [ceil(n/2)]
    private readonly Tensor weight_absmax;          // f32 [blocks] (no double quant) or uint8 dynamic-map codes [blocks]
    private readonly Tensor? weight_absmax_scales;  // f32 [groups of 256 blocks] (double quant)
    private readonly Tensor? weight_absmax_offset;  // f32 [1] (double quant)
    public readonly Parameter? bias;

    // The code books, one copy per device the layers run on (an op may not mix a CPU table with CUDA codes).
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Tensor> CodeBooks = new();
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Tensor> ConstantCodeBooks = new();

    private static Tensor On(System.Collections.Concurrent.ConcurrentDictionary<string, Tensor> books, float[] codes, Device device) =>
        books.GetOrAdd(device.ToString(), _ => tensor(codes, device: device).DetachFromDisposeScope());
    private readonly long count;
    private readonly int blocks;

    public long InFeatures { get; }
    public long OutFeatures { get; }
    public bool DoubleQuantized { get; }

    /// <summary>Bytes the layer's weight tensors hold (codes and constants, as allocated), excluding the bias.</summary>
    public long WeightStorageBytes { get; }

    /// <summary>Bytes the same weight takes in f32.</summary>
    public long DenseF32Bytes => 4 * InFeatures * OutFeatures;

    /// <summary>
    /// The type x·Wᵀ is computed in (bitsandbytes' <c>bnb_4bit_compute_dtype</c>): the input is cast to it and the
    /// output back to the input's type, as bitsandbytes' Linear4bit does. Null: the input's own type.
    /// </summary>
    public ScalarType? ComputeType { get; set; }

    public Nf4Linear(Nf4Tensor weight, Tensor? bias = null) : base(nameof(Nf4Linear))
    {
        if (weight.Shape.Length != 2) throw new ArgumentException("Nf4Linear needs a 2-D [out, in] weight.");
        OutFeatures = weight.Shape[0];
        InFeatures = weight.Shape[1];
        count = weight.Count;
        blocks = weight.Blocks;
        DoubleQuantized = weight.DoubleQuantized;
        weight_packed = Native(tensor(weight.Packed, ScalarType.Byte));
        if (weight.DoubleQuantized)
        {
            weight_absmax = Native(tensor(weight.AbsmaxCodes!, ScalarType.Byte));
            weight_absmax_scales = Native(tensor(weight.AbsmaxScales!));
            weight_absmax_offset = Native(tensor(new[] { weight.AbsmaxOffset }));
        }
        else
        {
            weight_absmax = Native(tensor(weight.Absmax!));
        }
        WeightStorageBytes = new[] { weight_packed, weight_absmax, weight_absmax_scales, weight_absmax_offset }
            .Sum(t => t is null ? 0 : t.NumberOfElements * t.ElementSize);
        if (bias is not null) this.bias = new Parameter(bias.detach().clone().DetachFromDisposeScope(), requires_grad: false);
        RegisterComponents();
        ModuleSeed.DetachFromScopes(this);
    }

    /// <summary>
    /// A copy in libtorch's own memory. TorchSharp's <c>tensor(array)</c> keeps a pinned .NET copy of the array as the
    /// tensor's storage, which the GC can neither move nor give back while the layer lives.
    /// </summary>
    private static Tensor Native(Tensor managed)
    {
        var copy = managed.clone();
        managed.Dispose();
        return copy;
    }

    /// <summary>Quantizes a Linear's weight (the Linear itself is left untouched).</summary>
    public static Nf4Linear FromLinear(Linear linear, bool doubleQuant = true) =>
        new(Nf4.Quantize(linear.weight, doubleQuant), linear.bias);

    public Tensor? Bias => bias;
    public bool SupportsMerge => false;
    public void AddToWeight(Tensor delta) =>
        throw new InvalidOperationException("An NF4 weight cannot be changed in place; dequantize it first.");

    /// <summary>The f32 weight [out, in] = code × absmax, computed block by block with tensor ops (f32 as bitsandbytes).</summary>
    public Tensor DenseWeight()
    {
        using var scope = NewDisposeScope();
        var high = weight_packed.bitwise_right_shift(4);
        var low = weight_packed.bitwise_and(0x0F);
        var idx = stack(new[] { high, low }, 1).reshape(-1).to(ScalarType.Int64);
        var padded = blocks * (long)Nf4.BlockSize;
        var values = DeviceOps.Rows(On(CodeBooks, Nf4.Codes, weight_packed.device), idx);
        values = values.shape[0] >= padded ? values.narrow(0, 0, padded) : nn.functional.pad(values, new[] { 0L, padded - values.shape[0] });
        Tensor absmax;
        if (DoubleQuantized)
        {
            // bitsandbytes: dequantize_blockwise (map[q] × the group's absmax), then + offset.
            var perBlock = weight_absmax_scales!.repeat_interleave(Nf4.ConstantBlockSize).narrow(0, 0, blocks);
            absmax = DeviceOps.Rows(On(ConstantCodeBooks, DynamicMap.Codes, weight_packed.device), weight_absmax.to(ScalarType.Int64)).mul(perBlock).add(weight_absmax_offset!, Scalars.One);
        }
        else
        {
            absmax = weight_absmax;
        }
        var w = values.reshape(blocks, Nf4.BlockSize).mul(absmax.unsqueeze(1)).reshape(-1).narrow(0, 0, count);
        return w.reshape(OutFeatures, InFeatures).MoveToOuterDisposeScope();
    }

    public Tensor Project(Tensor x)
    {
        if (ComputeType is not { } type || type == x.dtype) return Nf4MatMul.apply(x, this);
        using var scope = NewDisposeScope();
        return Nf4MatMul.apply(x.to(type), this).to(x.dtype).MoveToOuterDisposeScope();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = Project(x);
        if (bias is not null) y = y.add(bias.dtype == y.dtype ? bias : bias.to(y.dtype), Scalars.One);
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// x·Wᵀ with W dequantized from the layer's codes in forward and again in backward; nothing is saved for backward
    /// but the layer itself. The weight is frozen, so only the input gets a gradient: grad·W. (TorchSharp keeps an
    /// uninitialised copy of each output to materialise missing gradients; <see cref="forward(Tensor)"/>'s scope frees
    /// it at once, and missing gradients are passed on as missing instead.)
    /// </summary>
    private sealed class Nf4MatMul : torch.autograd.SingleTensorFunction<Nf4MatMul>
    {
        public override string Name => nameof(Nf4MatMul);

        public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
        {
            var (x, layer) = ((Tensor)vars[0], (Nf4Linear)vars[1]);
            ctx.save_data("layer", layer);
            ctx.set_materialize_grads(false);
            using var scope = NewDisposeScope();
            return nn.functional.linear(x, MixedPrecision.As(layer.DenseWeight(), x.dtype)).MoveToOuterDisposeScope();
        }

        public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad)
        {
            if (grad is null || grad.IsInvalid) return [null!, null!];
            var layer = (Nf4Linear)ctx.get_data("layer");
            using var scope = NewDisposeScope();
            var weight = MixedPrecision.As(layer.DenseWeight(), grad.dtype);
            return [grad.matmul(weight).MoveToOuterDisposeScope(), null!];
        }
    }
}

/// <summary>
/// QLoRA: the base model's linear layers become NF4 (all of them but the output head, as bitsandbytes' load_in_4bit
/// does), then LoRA trains on top of the quantized bases.
/// </summary>
public static class QLora
{
    /// <summary>
    /// Replaces every Linear of the model except <c>lm_head</c> by an <see cref="Nf4Linear"/> and disposes the f32
    /// weights it replaced at once (not when the .NET GC gets to them). Returns the quantized paths.
    /// </summary>
    public static IReadOnlyList<string> QuantizeBase(nn.Module model, bool doubleQuant = true)
    {
        var paths = model.named_modules().Where(m => IsBaseProjection(m.name, m.module)).Select(m => m.name).ToArray();
        // A base loaded through BaseLoader is NF4 already.
        return paths.Length == 0 ? [] : Quantize(model, ModuleTargets.Suffixes(paths), doubleQuant);
    }

    /// <summary>What QLoRA quantizes: every Linear of the base but the output head (bitsandbytes' load_in_4bit).</summary>
    public static bool IsBaseProjection(string path, nn.Module module) => module is Linear && path != "lm_head";

    /// <summary>Replaces every target Linear by an <see cref="Nf4Linear"/>, disposing the f32 Linear; returns the paths.</summary>
    public static IReadOnlyList<string> Quantize(nn.Module model, ModuleTargets targets, bool doubleQuant = true)
    {
        var replaced = new List<Linear>();
        var paths = AdapterInjector.Inject(model, targets, (path, original) => original switch
        {
            Linear linear => Replaced(linear),
            _ => throw new InvalidOperationException($"Module '{path}' is a {original.GetType().Name}; only a Linear can be quantized."),
        });
        foreach (var linear in replaced) linear.Dispose();
        return paths;

        Nf4Linear Replaced(Linear linear)
        {
            replaced.Add(linear);
            return Nf4Linear.FromLinear(linear, doubleQuant);
        }
    }

    /// <summary>Bytes of all NF4 weights in the model and what they would take in f32 (for the run report).</summary>
    public static (long nf4Bytes, long f32Bytes) WeightBytes(nn.Module model)
    {
        long q = 0, f = 0;
        foreach (var (_, m) in model.named_modules())
            if (m is Nf4Linear n) { q += n.WeightStorageBytes; f += n.DenseF32Bytes; }
        return (q, f);
    }

    /// <summary>Quantize the base model's linear layers, then wrap the targets with LoRA; returns the adapted paths.</summary>
    public static IReadOnlyList<string> Apply(nn.Module model, ModuleTargets targets, LoraOptions options, bool doubleQuant = true)
    {
        QuantizeBase(model, doubleQuant);
        return Lora.Apply(model, targets, options);
    }
}
