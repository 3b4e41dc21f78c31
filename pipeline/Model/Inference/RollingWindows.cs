namespace Forgetless.Model.Inference;

/// <summary>
/// The windows lm-evaluation-harness scores a long text in (<c>loglikelihood_rolling</c>:
/// <c>get_rolling_token_windows</c> with context length 1, then <c>make_disjoint_window</c>). With n tokens and a
/// context of L tokens:
/// <list type="bullet">
/// <item>the first window predicts tokens [0, min(L, n)) after the prefix token (BOS, else EOS) alone;</item>
/// <item>each later window predicts the next min(L, rest) tokens and is given, as context, the tokens before them
/// that fill its input up to L: a full window gets one token of context, the last (shorter) one gets more.</item>
/// </list>
/// Every token is predicted exactly once, and every window's input is at most L tokens.
/// </summary>
public static class RollingWindows
{
    public static IReadOnlyList<(int[] Context, int[] Target)> Of(int[] tokens, int prefixToken, int contextLength)
    {
        if (contextLength < 1) throw new ArgumentOutOfRangeException(nameof(contextLength), contextLength, "a window needs at least one token");
        var windows = new List<(int[] Context, int[] Target)>();
        if (tokens.Length == 0) return windows;
        int first = Math.Min(contextLength, tokens.Length);
        windows.Add(([prefixToken], tokens[..first]));
        for (int predicted = first; predicted < tokens.Length;)
        {
            int length = Math.Min(tokens.Length - predicted, contextLength);
            int end = predicted + length;
            // The input is the L tokens before `end`; the ones before the predicted tokens are the context.
            windows.Add((tokens[(end - contextLength - 1)..predicted], tokens[predicted..end]));
            predicted = end;
        }
        return windows;
    }
}
