using static TorchSharp.torch;

namespace Forgetless.Model;

/// <summary>
/// Seam for prefix tuning: extra keys and values that every attention layer puts in front of the
/// sequence's own. Real tokens attend to all prefix positions; the prefix does not shift the real
/// tokens' positions (RoPE/learned positions start at 0 as without a prefix) and carries no rotation.
/// </summary>
public interface IPrefixKeyValues
{
    /// <summary>Number of virtual tokens P.</summary>
    int Length { get; }

    /// <summary>Keys and values for layer <paramref name="layer"/>, each [batch, kv_heads, P, head_dim] float32.</summary>
    (Tensor Keys, Tensor Values) ForLayer(int layer, long batchSize);
}
