using static TorchSharp.torch;

namespace Forgetless.Model;

/// <summary>
/// Rows that hold more than one sequence: where each token sits and which tokens of its row it may see. A plain
/// row (one sequence, right padding or none) needs no layout: causal attention and positions 0, 1, … are right
/// for every real token. Tensors live on the device of the ids they were made for.
/// </summary>
public sealed class TokenLayout : IDisposable
{
    private TokenLayout(Tensor positions, Tensor visible, long positionCount)
    {
        Positions = positions;
        Visible = visible;
        PositionCount = positionCount;
    }

    /// <summary>An upper bound of the positions used, plus one: how long a sequence the model must be able to number.</summary>
    public long PositionCount { get; }

    /// <summary>[B, T] int64 position of each token (what RoPE or a learned position embedding sees).</summary>
    public Tensor Positions { get; }

    /// <summary>[B, T, T] bool: true where query token q (dim 1) may see key token k (dim 2). Every query sees itself.</summary>
    public Tensor Visible { get; }

    /// <summary>
    /// Packed documents, as HF's packing with <c>position_ids</c> (<c>DataCollatorWithFlattening</c> with flash
    /// attention): a token sees the earlier tokens of its own document only (block-diagonal causal attention), and
    /// positions restart at 0 with each document. <paramref name="segmentIds"/> [B, T] numbers the documents of a row
    /// (prepare's <c>segment_ids</c>: 1, 2, … and 0 for padding, which forms one more block whose outputs are unused).
    /// A token's position is the number of tokens of its document before it, so each document computes exactly
    /// what it computes alone.
    /// </summary>
    public static TokenLayout Documents(Tensor segmentIds)
    {
        if (segmentIds.dim() != 2) throw new ArgumentException($"segment ids must be [batch, tokens], got [{string.Join(", ", segmentIds.shape)}]");
        using var scope = NewDisposeScope();
        long t = segmentIds.shape[1];
        var sameDocument = segmentIds.unsqueeze(2).eq(segmentIds.unsqueeze(1));
        var visible = sameDocument.bitwise_and(Causal(t, segmentIds.device));
        var positions = visible.sum(-1, type: ScalarType.Int64).sub_(Scalars.One);
        return new TokenLayout(positions.MoveToOuterDisposeScope(), visible.MoveToOuterDisposeScope(), t);
    }

    /// <summary>
    /// Branches that share a trunk, from host arrays: row b's token q has position <paramref name="positions"/>[b, q] and
    /// sees token k where <paramref name="visible"/>[b, q, k]. (Scoring puts a context and several continuations of it
    /// in one row this way: each continuation sees the context and itself, not the other continuations.)
    /// </summary>
    public static TokenLayout FromArrays(long[] positions, bool[] visible, int batch, int tokens, Device device)
    {
        if (positions.Length != batch * tokens || visible.Length != batch * tokens * tokens)
            throw new ArgumentException($"a layout of {batch} × {tokens} tokens needs {batch * tokens} positions and {batch * tokens * tokens} visibility flags");
        return new TokenLayout(tensor(positions, [batch, tokens], device: device), tensor(visible, [batch, tokens, tokens], device: device),
            positions.Length == 0 ? 0 : positions.Max() + 1);
    }

    /// <summary>The layout of the rows at <paramref name="indices"/> (int64), e.g. the replay rows of a batch.</summary>
    public TokenLayout Rows(Tensor indices) => new(Devices.DeviceOps.Rows(Positions, indices), Devices.DeviceOps.Rows(Visible, indices), PositionCount);

    /// <summary>[T, T] bool: key k is at or before query q.</summary>
    internal static Tensor Causal(long t, Device device) => ones(t, t, ScalarType.Bool, device: device).tril();

    public void Dispose()
    {
        Positions.Dispose();
        Visible.Dispose();
    }
}
