using static TorchSharp.torch;

namespace Forgetless.Model;

/// <summary>
/// Seam for prefix tuning: extra keys and values that every attention layer puts in front of the
/// sequence's own, as HF PEFT passes them (a KV cache of P virtual tokens). Real tokens attend to all
/// prefix positions and are numbered after them (positions P, P+1, …, for RoPE and learned positions
/// alike); the prefix keys are used as given (a cache holds keys already rotated, so none is applied).
/// </summary>
public interface IPrefixKeyValues
{
    /// <summary>Number of virtual tokens P.</summary>
    int Length { get; }

    /// <summary>Keys and values for layer <paramref name="layer"/>, each [batch, kv_heads, P, head_dim] float32.</summary>
    (Tensor Keys, Tensor Values) ForLayer(int layer, long batchSize);
}
