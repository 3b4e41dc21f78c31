using static TorchSharp.torch;

namespace Forgetless.Model;

/// <summary>
/// Keys and values of every layer for the tokens seen so far, plus the attention mask of those tokens,
/// so that a generation step only runs the new token through the model. Tensors held here are detached
/// from dispose scopes and owned by the cache: dispose the cache when the generation ends.
/// Keys and values are stored per layer as [batch, kv_heads, seen, head_dim], before any prefix.
/// </summary>
public sealed class KvCache : IDisposable
{
    private readonly Tensor?[] keys;
    private readonly Tensor?[] values;
    private Tensor? mask;

    public KvCache(int numLayers)
    {
        keys = new Tensor?[numLayers];
        values = new Tensor?[numLayers];
    }

    /// <summary>Number of token positions already in the cache (including padding).</summary>
    public int Length { get; private set; }

    /// <summary>[batch, Length] int64, 1 for real tokens and 0 for padding; null while empty.</summary>
    public Tensor? AttentionMask => mask;

    internal (Tensor Keys, Tensor Values) Append(int layer, Tensor k, Tensor v)
    {
        var oldK = keys[layer];
        var oldV = values[layer];
        var newK = oldK is null ? k.alias() : cat([oldK, k], 2);
        var newV = oldV is null ? v.alias() : cat([oldV, v], 2);
        keys[layer] = newK.DetachFromDisposeScope();
        values[layer] = newV.DetachFromDisposeScope();
        oldK?.Dispose();
        oldV?.Dispose();
        return (newK, newV);
    }

    internal void Advance(Tensor fullMask)
    {
        var old = mask;
        mask = fullMask.alias().DetachFromDisposeScope();
        old?.Dispose();
        Length = (int)fullMask.shape[1];
    }

    /// <summary>Keeps only the batch rows at <paramref name="rows"/> (int64 indices), e.g. the generations still running.</summary>
    public void KeepRows(Tensor rows)
    {
        for (int i = 0; i < keys.Length; i++)
        {
            keys[i] = Replace(keys[i], rows);
            values[i] = Replace(values[i], rows);
        }
        mask = Replace(mask, rows);
    }

    private static Tensor? Replace(Tensor? old, Tensor rows)
    {
        if (old is null) return null;
        var kept = Devices.DeviceOps.Rows(old, rows).DetachFromDisposeScope();
        old.Dispose();
        return kept;
    }

    public void Dispose()
    {
        foreach (var t in keys.Concat(values)) t?.Dispose();
        Array.Clear(keys);
        Array.Clear(values);
        mask?.Dispose();
        mask = null;
        Length = 0;
    }
}
