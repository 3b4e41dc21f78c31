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
            if (linear.bias is null) return Linear(x, linear.weight);
            using var w = linear.weight.to(x.dtype);
            using var b = linear.bias.to(x.dtype);
            return nn.functional.linear(x, w, b);
        }
        return layer.call(x);
    }

    /// <summary>
    /// <paramref name="x"/> · <paramref name="weight"/>ᵀ with the weight cast to the activations' type (a tied output head).
    /// Where no gradient is taken, a weight of another type is widened <see cref="SliceBytes"/> of rows at a time, never
    /// whole: qlora's 16-bit 151,936-row table beside f32 activations would otherwise be widened to 0.54 GB on every
    /// scoring forward. (With autograd recording, the widened copy is what backward keeps anyway.)
    /// </summary>
    /// <param name="sliceRows">Rows widened at a time (tests); by default <see cref="SliceBytes"/> worth.</param>
    public static Tensor Linear(Tensor x, Tensor weight, long? sliceRows = null)
    {
        if (weight.dtype == x.dtype) return nn.functional.linear(x, weight);
        if (is_grad_enabled() && (x.requires_grad || weight.requires_grad))
        {
            using var whole = weight.to(x.dtype);
            return nn.functional.linear(x, whole);
        }
        long rows = weight.shape[0], slice = sliceRows ?? SliceRows(weight);
        var result = empty([.. x.shape.SkipLast(1), rows], x.dtype, x.device);
        for (long start = 0; start < rows; start += slice)
        {
            long count = Math.Min(slice, rows - start);
            using var w = weight.narrow(0, start, count).to(x.dtype);
            using var part = nn.functional.linear(x, w);
            result.narrow(-1, start, count).copy_(part);
        }
        return result;
    }

    /// <summary>A widened slice of a weight holds at most this many bytes (f32).</summary>
    public const long SliceBytes = 32L << 20;

    /// <summary>Rows of <paramref name="weight"/> [rows, columns] widened at a time: <see cref="SliceBytes"/> worth, at least one.</summary>
    public static long SliceRows(Tensor weight) => F32RowsWithin(SliceBytes, weight.shape[1]);

    /// <summary>
    /// How many f32 rows of <paramref name="rowLength"/> values fit <paramref name="bytes"/>, at least one: the slice size
    /// of every piece of work done a budget at a time (widened weight rows, loss chunks, scored positions' logits).
    /// </summary>
    public static long F32RowsWithin(long bytes, long rowLength) => Math.Max(1, bytes / (4 * rowLength));

    /// <summary><paramref name="t"/> in <paramref name="type"/> (itself when it already is).</summary>
    public static Tensor As(Tensor t, ScalarType type) => t.dtype == type ? t : t.to(type);
}
