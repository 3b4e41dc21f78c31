using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Model;

/// <summary>
/// What every layer of one forward pass shares: token positions, which keys each query may see, and
/// where cached or prefix keys come from. Built once per forward in <see cref="CausalLM.Forward"/>.
/// </summary>
/// <remarks>
/// Attention runs in libtorch's fused <c>scaled_dot_product_attention</c> (flash-style kernels on CPU and CUDA; no
/// [T, T] score matrix is kept for backward). Plain causal rows — no padding, or right padding, whose keys no real
/// query can reach — go without a mask, so the kernel skips the blocks above the diagonal; everything else (left
/// padding, a KV cache, a prefix, packed documents, shared-context branches) passes an explicit mask. The
/// hand-written path remains for the <c>meta</c> device, where libtorch has no kernel for the fused op.
/// Every tensor made here is made on the device of the input ids; masks are combined with bitwise ops, which (unlike
/// the logical ones) have meta kernels.
/// </remarks>
internal sealed class AttentionContext
{
    /// <summary>
    /// [B, T] int64 position of each new token: the real tokens before it, plus the virtual tokens of a prefix
    /// (HF PEFT passes a prefix as a KV cache, so the real tokens start at position P).
    /// </summary>
    public required Tensor Positions { get; init; }

    /// <summary>[B, 1, T, P + S] bool, true where the query may attend; null: plain causal attention over the T new tokens.</summary>
    public Tensor? Allowed { get; init; }

    /// <summary>[B, S] int64 mask of the cached and new tokens, S = past + T; null when there is no cache to extend.</summary>
    public Tensor? FullMask { get; init; }

    public KvCache? Cache { get; init; }
    public IPrefixKeyValues? Prefix { get; init; }
    public int PastLength { get; init; }

    public static AttentionContext Create(Tensor inputIds, Tensor? attentionMask, KvCache? cache, IPrefixKeyValues? prefix, TokenLayout? layout)
    {
        long b = inputIds.shape[0], t = inputIds.shape[1];
        var device = inputIds.device;
        int prefixLength = prefix?.Length ?? 0;
        Tensor positions;
        Tensor? allowed = null, fullMask = null;
        if (layout is not null)
        {
            if (attentionMask is not null || cache is not null)
                throw new ArgumentException("a token layout already says which tokens each token sees; pass no attention mask and no cache with it");
            if (!layout.Positions.shape.SequenceEqual(inputIds.shape))
                throw new ArgumentException($"token layout positions [{string.Join(", ", layout.Positions.shape)}] differ from inputIds [{string.Join(", ", inputIds.shape)}]");
            positions = layout.Positions;
            allowed = layout.Visible.unsqueeze(1);
        }
        else if (attentionMask is null && cache is null)
        {
            using var length = t.ToScalar();
            positions = arange(Scalars.Zero, length, Scalars.One, ScalarType.Int64, device: device).unsqueeze(0).expand(b, t);
        }
        else
        {
            var past = cache?.Length ?? 0;
            var newMask = attentionMask?.to(ScalarType.Int64) ?? ones(b, t, ScalarType.Int64, device: device);
            fullMask = cache?.AttentionMask is { } pastMask ? cat([pastMask, newMask], 1) : newMask;
            long s = fullMask.shape[1];
            // Positions count real tokens, so left padding (generation) and right padding (scoring) both
            // give each real token the position it would have alone.
            positions = fullMask.cumsum(1).sub_(Scalars.One).clamp_min_(Scalars.Zero).narrow(1, past, t);
            using Scalar first = past, end = past + t, keys = s;
            var queryAbs = arange(first, end, Scalars.One, ScalarType.Int64, device: device).unsqueeze(1);
            var keyAbs = arange(Scalars.Zero, keys, Scalars.One, ScalarType.Int64, device: device).unsqueeze(0);
            allowed = keyAbs.le(queryAbs).view(1, 1, t, s).bitwise_and(fullMask.to(ScalarType.Bool).view(b, 1, 1, s));
            // A query with nothing to see (left padding before any real token) sees itself: its output is never used,
            // and a row with no key at all is NaN in some fused kernels.
            allowed = allowed.bitwise_or(keyAbs.eq(queryAbs).view(1, 1, t, s));
        }
        // A prefix sits in front as P cached tokens: PEFT's prefix tuning hands it to the model as past_key_values, so
        // transformers numbers the real tokens P, P+1, … (cache_position, or position_ids + P) — for RoPE and for
        // learned absolute positions alike — and every real token sees every virtual one.
        if (prefixLength > 0)
        {
            using var p = prefixLength.ToScalar();
            positions = positions.add(p, Scalars.One);
            var own = allowed ?? TokenLayout.Causal(t, device).view(1, 1, t, t);
            allowed = cat([ones(b, 1, t, prefixLength, ScalarType.Bool, device: device), own.expand(b, 1, t, own.shape[3])], 3);
        }
        return new AttentionContext
        {
            Positions = positions,
            Allowed = allowed,
            FullMask = fullMask,
            Cache = cache,
            Prefix = prefix,
            PastLength = cache?.Length ?? 0,
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
        if (q.device.type == DeviceType.META) return HandWritten(q, k, v);
        return nn.functional.scaled_dot_product_attention(q, k, v, Allowed, 0, Allowed is null);
    }

    /// <summary>The same attention as matmul, mask and softmax, for devices without the fused kernel (meta).</summary>
    private Tensor HandWritten(Tensor q, Tensor k, Tensor v)
    {
        using var scale = (1.0 / Math.Sqrt(q.shape[3])).ToScalar();
        using var lowest = float.MinValue.ToScalar();
        // Half-precision scores are masked and normalised in f32, as transformers' eager attention does (f32.MinValue
        // does not fit bf16 or f16); with f32 activations both casts are no-ops.
        var scores = Devices.MixedPrecision.As(matmul(q, k.transpose(-2, -1)).mul_(scale), ScalarType.Float32);
        var allowed = Allowed ?? TokenLayout.Causal(q.shape[2], q.device).view(1, 1, q.shape[2], k.shape[2]);
        scores = scores.masked_fill(allowed.eq(Scalars.Zero), lowest); // eq, not logical_not: meta has a kernel for eq only
        return matmul(Devices.MixedPrecision.As(nn.functional.softmax(scores, -1), v.dtype), v);
    }
}
