using static TorchSharp.torch;

namespace Forgetless.Pretraining;

/// <summary>
/// Random windows of <c>seqLen + 1</c> tokens from a token stream. The batch of step s depends only
/// on (seed, s), so a resumed run sees exactly the batches an uninterrupted one would have seen.
/// </summary>
public sealed class WindowSampler(int[] tokens, int seqLen, int batch, long seed)
{
    public (Tensor Inputs, Tensor Targets) Batch(long step, Device? device = null)
    {
        var random = new Random(StepSeed(seed, step));
        int span = seqLen + 1;
        if (tokens.Length <= span) throw new InvalidOperationException($"the corpus has {tokens.Length} tokens, fewer than one window of {span}");
        var windows = new long[batch * span];
        for (int b = 0; b < batch; b++)
        {
            int start = random.Next(tokens.Length - span);
            for (int t = 0; t < span; t++) windows[b * span + t] = tokens[start + t];
        }
        using var all = tensor(windows, [batch, span], device: device);
        return (all[.., ..seqLen].contiguous(), all[.., 1..].contiguous());
    }

    /// <summary>A 31-bit seed from (seed, step) by SplitMix64 mixing; stable across processes, unlike HashCode.</summary>
    public static int StepSeed(long seed, long step)
    {
        ulong z = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)step);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return (int)((z ^ (z >> 31)) & 0x7FFFFFFF);
    }

    /// <summary>Consecutive non-overlapping windows from the start: a fixed evaluation set.</summary>
    public static IEnumerable<(Tensor Inputs, Tensor Targets)> Sequential(int[] tokens, int seqLen, int count, Device? device = null)
    {
        int span = seqLen + 1;
        for (int i = 0; i < count && (i + 1) * span <= tokens.Length; i++)
        {
            var window = tokens.AsSpan(i * span, span).ToArray().Select(t => (long)t).ToArray();
            using var all = tensor(window, [1, span], device: device);
            yield return (all[.., ..seqLen].contiguous(), all[.., 1..].contiguous());
        }
    }
}
