using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Model.Devices;

/// <summary>
/// Operations written so that they run on every device the pipeline uses — CPU, CUDA and the meta device the placement
/// tests run on. libtorch's C++ build registers no meta kernel for some operators (index_select, where, nonzero,
/// multinomial, logical_and, abs, layer_norm, scaled_dot_product_attention, …; the Python package adds them in Python);
/// these helpers take an equivalent path there and libtorch's usual one everywhere else.
/// </summary>
public static class DeviceOps
{
    /// <summary>Rows <paramref name="indices"/> of <paramref name="table"/> along dimension 0 (an embedding lookup): [..., rest of table].</summary>
    public static Tensor Rows(Tensor table, Tensor indices)
    {
        if (HostValues.IsMeta(table)) return table.index(indices); // advanced indexing has a meta kernel; index_select has none
        if (indices.dim() == 1) return table.index_select(0, indices);
        using var flat = indices.reshape(-1);
        using var rows = table.index_select(0, flat);
        return rows.reshape([.. indices.shape, .. table.shape.Skip(1)]);
    }

    /// <summary>
    /// One draw from the categorical distribution <paramref name="probs"/> [V] (unnormalised weights allowed), on the
    /// device: argmax(p / q) for q ~ Exp(1) from <paramref name="generator"/> — exactly what libtorch's
    /// <c>multinomial(p, 1)</c> computes (same generator draws, same result), without its host-side checks.
    /// Returns a one-element int64 tensor on the device; read it with <see cref="HostValues"/>.
    /// </summary>
    public static Tensor Categorical(Tensor probs, Generator? generator)
    {
        using var scope = NewDisposeScope();
        var q = empty_like(probs).exponential_(1, generator);
        return probs.div(q).argmax().MoveToOuterDisposeScope();
    }

    /// <summary>The generator to draw with for tensors on <paramref name="device"/> (a CUDA tensor needs a CUDA generator).</summary>
    public static bool Serves(this Generator generator, Device device) =>
        device.type == DeviceType.META || generator.device.type == device.type;
}
