using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Model;

/// <summary>
/// What every layer of one forward pass shares: token positions, which keys each query may see, and
/// where cached or prefix keys come from. Built once per forward in <see cref="CausalLM.Forward"/>.
/// </summary>
internal sealed class AttentionContext
{
    /// <summary>
    /// [B, T] int64 position of each new token: the real tokens before it, plus the virtual tokens of a prefix
    /// (HF PEFT passes a prefix as a KV cache, so the real tokens start at position P).
    /// </summary>
    public required Tensor Positions { get; init; }

    /// <summary>[B, 1, T, P + S] bool, true where the query must NOT attend (masked_fill form).</summary>
    public required Tensor Blocked { get; init; }

    /// <summary>[B, S] int64 mask of the cached and new tokens, S = past + T.</summary>
    public required Tensor FullMask { get; init; }

    public KvCache? Cache { get; init; }
    public IPrefixKeyValues? Prefix { get; init; }
    public int PastLength { get; init; }

    public static AttentionContext Create(Tensor inputIds, Tensor? attentionMask, KvCache? cache, IPrefixKeyValues? prefix)
    {
        long b = inputIds.shape[0], t = inputIds.shape[1];
        var past = cache?.Length ?? 0;
        var device = inputIds.device;
        var newMask = attentionMask?.to(ScalarType.Int64) ?? ones(b, t, ScalarType.Int64, device: device);
        var fullMask = cache?.AttentionMask is { } pastMask ? cat([pastMask, newMask], 1) : newMask;
        long s = fullMask.shape[1];

        // Positions count real tokens, so left padding (generation) and right padding (scoring) both
        // give each real token the position it would have alone. A prefix sits in front as P cached
        // tokens: PEFT's prefix tuning hands it to the model as past_key_values, so transformers
        // numbers the real tokens P, P+1, … (cache_position, or position_ids + P) — for RoPE and for
        // learned absolute positions alike.
        var positions = (fullMask.cumsum(1) - 1).clamp_min(0).narrow(1, past, t);
        if (prefix is { Length: > 0 }) positions = positions + prefix.Length;

        var queryAbs = arange(past, past + t, ScalarType.Int64, device: device).unsqueeze(1);
        var keyAbs = arange(0, s, ScalarType.Int64, device: device).unsqueeze(0);
        var causal = keyAbs.le(queryAbs).view(1, 1, t, s);
        // bitwise_and/bitwise_not are logical_and/logical_not on bool tensors, and unlike those they have meta kernels
        // in libtorch's C++ build (the device the placement tests run on).
        var allowed = causal.bitwise_and(fullMask.to(ScalarType.Bool).view(b, 1, 1, s));
        if (prefix is { Length: > 0 })
            allowed = cat([ones(b, 1, t, prefix.Length, ScalarType.Bool, device: device), allowed.expand(b, 1, t, s)], 3);

        return new AttentionContext
        {
            Positions = positions,
            Blocked = allowed.bitwise_not(),
            FullMask = fullMask,
            Cache = cache,
            Prefix = prefix,
            PastLength = past,
        };
    }

    /// <summary>
    /// Scaled dot-product attention over this layer's keys: appends to the cache, puts the prefix in
    /// front, repeats key/value heads for grouped-query attention. q: [B, H, T, D]; k, v: [B, KvH, T, D].
    /// Returns [B, H, T, D].
    /// </summary>
    public Tensor Attend(int layer, Tensor q, Tensor k, Tensor v)
    {
        if (Cache is not null) (k, v) = Cache.Append(layer, k, v);
        if (Prefix is { Length: > 0 })
        {
            var (pk, pv) = Prefix.ForLayer(layer, q.shape[0]);
            k = cat([pk, k], 2);
            v = cat([pv, v], 2);
        }
        var groups = q.shape[1] / k.shape[1];
        if (groups > 1)
        {
            // Query head h uses key/value head h / groups, as HF's repeat_kv.
            k = k.repeat_interleave(groups, 1);
            v = v.repeat_interleave(groups, 1);
        }
        // Half-precision scores are masked and normalised in f32, as transformers' eager attention does (f32.MinValue
        // does not fit bf16 or f16); with f32 activations both casts are no-ops.
        var scores = Devices.MixedPrecision.As(matmul(q, k.transpose(-2, -1)) * (1.0 / Math.Sqrt(q.shape[3])), ScalarType.Float32);
        // A large finite value instead of -inf: a query with nothing to see (left padding) gets a
        // uniform row instead of NaN, and its output is never used.
        scores = scores.masked_fill(Blocked, float.MinValue);
        return matmul(Devices.MixedPrecision.As(nn.functional.softmax(scores, -1), v.dtype), v);
    }
}
