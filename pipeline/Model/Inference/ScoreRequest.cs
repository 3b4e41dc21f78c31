namespace Forgetless.Model.Inference;

/// <summary>
/// One row to score: either <see cref="Text"/> alone (every token is scored, in lm-eval's rolling windows, the first
/// conditioned on the BOS/EOS token — <c>loglikelihood_rolling</c>), or <see cref="Context"/> + <see cref="Continuation"/>
/// (only the continuation's tokens are scored — <c>loglikelihood</c>).
/// </summary>
public sealed record ScoreRequest(string? Text = null, string? Context = null, string? Continuation = null)
{
    public static ScoreRequest ForText(string text) => new(Text: text);

    public static ScoreRequest ForContinuation(string context, string continuation) => new(Context: context, Continuation: continuation);
}

/// <summary>Log-probabilities (natural log) of the scored tokens.</summary>
/// <param name="IsGreedy">True when every scored token is the model's argmax at its position (lm-eval's is_greedy).</param>
public sealed record ScoreResult(IReadOnlyList<int> TokenIds, IReadOnlyList<double> LogProbs, double SumLogProb, bool IsGreedy)
{
    public int TokenCount => TokenIds.Count;
}
