using Forgetless.Model.Tokenizers;
using Forgetless.Model.Devices;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Model.Inference;

/// <summary>
/// Log-likelihood scoring as lm-evaluation-harness does it (<c>loglikelihood</c> and <c>loglikelihood_rolling</c> of
/// its HF model). A context/continuation pair: the context's trailing whitespace (Python's <c>rstrip()</c>) moves to
/// the continuation, then the continuation's tokens are <c>encode(context + continuation)</c> minus the first
/// <c>len(encode(context))</c> tokens, so that merges across the boundary are scored as the model would see them;
/// an empty context is the prefix token (BOS, else EOS) unless the continuation starts with it. A plain text is
/// scored in lm-eval's rolling windows (<see cref="RollingWindows"/>) of the model's context, the first conditioned
/// on the prefix token, so a text of any length is scored and every token once. Inputs longer than the context lose
/// tokens from the left, as lm-eval's; a continuation longer than the context is an error.
/// Rows are batched with right padding; each row's result equals scoring it alone (up to float rounding).
/// </summary>
public sealed class Scorer(CausalLM model, ITokenizer tokenizer, int batchSize = 8)
{
    public CausalLM Model => model;
    public ITokenizer Tokenizer => tokenizer;

    public ScoreResult Score(ScoreRequest request) => Score([request])[0];

    /// <summary>Scores a JSONL file into another; see <see cref="JsonlScoring"/> for the line formats.</summary>
    public ScoreFileSummary ScoreFile(string inputPath, string outputPath, CancellationToken cancellationToken = default) =>
        JsonlScoring.Run(this, inputPath, outputPath, cancellationToken);

    /// <summary>Scores every request; a text's windows are joined back into one result (every token of the text, in order).</summary>
    public IReadOnlyList<ScoreResult> Score(IReadOnlyList<ScoreRequest> requests, CancellationToken cancellationToken = default)
    {
        var windows = new List<(int[] Context, int[] Target)>();
        var owner = new List<int>();
        for (int i = 0; i < requests.Count; i++)
            foreach (var window in Windows(requests[i]))
            {
                windows.Add(window);
                owner.Add(i);
            }
        var scored = ScoreTokens(windows, cancellationToken);
        var parts = Enumerable.Range(0, requests.Count).Select(_ => new List<ScoreResult>()).ToArray();
        for (int w = 0; w < scored.Count; w++) parts[owner[w]].Add(scored[w]);
        return parts.Select(Join).ToList();
    }

    private static ScoreResult Join(List<ScoreResult> windows)
    {
        if (windows.Count == 1) return windows[0];
        var logProbs = windows.SelectMany(w => w.LogProbs).ToList();
        return new ScoreResult(windows.SelectMany(w => w.TokenIds).ToList(), logProbs, logProbs.Sum(), windows.All(w => w.IsGreedy));
    }

    /// <summary>The (context, tokens to score) windows of a request: a text's rolling windows, or the one pair of a continuation.</summary>
    public IReadOnlyList<(int[] Context, int[] Target)> Windows(ScoreRequest request)
    {
        if (request.Text is not { } text) return [Tokenize(request)];
        if (request.Context is not null || request.Continuation is not null)
            throw new ArgumentException("a score request has either text, or context and continuation, not both");
        var tokens = tokenizer.Encode(text);
        return tokens.Length == 0 ? [([], [])] : RollingWindows.Of(tokens, PrefixToken("a text"), model.ContextLength);
    }

    /// <summary>Token ids of the context and of the continuation to score (lm-eval's <c>_encode_pair</c>, or its empty-context rule).</summary>
    public (int[] Context, int[] Target) Tokenize(ScoreRequest request)
    {
        var ctx = request.Context ?? throw new ArgumentException("a score request needs a context and a continuation (or a text)");
        var cont = request.Continuation ?? throw new ArgumentException("a score request with a context needs a continuation");
        var trimmed = PythonText.RStrip(ctx);
        cont = ctx[trimmed.Length..] + cont;
        if (trimmed.Length == 0)
        {
            // lm-eval: an empty context is the prefix token, unless the continuation already starts with it. (A context
            // of whitespace alone would leave lm-eval an empty context and misaligned scores; it is treated as empty.)
            var whole = tokenizer.Encode(cont);
            if ((tokenizer.BosId ?? tokenizer.EosId) is { } prefix && (whole.Length == 0 || whole[0] != prefix)) return ([prefix], whole);
            return whole.Length == 0 ? ([], []) : (whole[..1], whole[1..]);
        }
        var context = tokenizer.Encode(trimmed);
        var both = tokenizer.Encode(trimmed + cont);
        // As lm-eval: the continuation is what follows len(context) tokens of the joint encoding, even where a merge
        // across the boundary changed the last context token (the model is then fed the context's own tokens).
        return (context, both.Length > context.Length ? both[context.Length..] : []);
    }

    private int PrefixToken(string what) => tokenizer.BosId ?? tokenizer.EosId
        ?? throw new InvalidOperationException($"scoring {what} needs a BOS or EOS token to condition the first token on; the tokenizer has neither");

    public IReadOnlyList<ScoreResult> ScoreTokens(IReadOnlyList<(int[] Context, int[] Target)> rows, CancellationToken cancellationToken = default)
    {
        var maxLength = model.ContextLength;
        var inputs = rows.Select(r =>
        {
            if (r.Target.Length > maxLength)
                throw new ArgumentException($"a continuation of {r.Target.Length} tokens exceeds the model's context of {maxLength} tokens");
            var all = r.Context.Concat(r.Target).ToArray();
            var input = all[..^1];
            return input.Length > maxLength ? input[^maxLength..] : input;
        }).ToList();

        var results = new ScoreResult[rows.Count];
        // Longest first, so each batch pads little.
        var order = Enumerable.Range(0, rows.Count).Where(i => rows[i].Target.Length > 0).OrderByDescending(i => inputs[i].Length).ToList();
        foreach (var i in Enumerable.Range(0, rows.Count).Where(i => rows[i].Target.Length == 0))
            results[i] = new ScoreResult([], [], 0, true);
        using var _ = no_grad();
        foreach (var batch in order.Chunk(batchSize))
        {
            cancellationToken.ThrowIfCancellationRequested();
            ScoreBatch(batch, inputs, rows, results);
        }
        return results;
    }

    private void ScoreBatch(int[] batch, List<int[]> inputs, IReadOnlyList<(int[] Context, int[] Target)> rows, ScoreResult[] results)
    {
        using var scope = NewDisposeScope();
        var width = batch.Max(i => inputs[i].Length);
        var ids = new long[batch.Length * width];
        var mask = new long[batch.Length * width];
        for (var b = 0; b < batch.Length; b++)
        {
            var input = inputs[batch[b]];
            for (var t = 0; t < input.Length; t++)
            {
                ids[b * width + t] = input[t];
                mask[b * width + t] = 1;
            }
        }
        var device = model.Device;
        var logits = model.Forward(tensor(ids, [batch.Length, width], device: device), tensor(mask, [batch.Length, width], device: device));
        for (var b = 0; b < batch.Length; b++)
        {
            var (_, target) = rows[batch[b]];
            var length = inputs[batch[b]].Length;
            // Position t predicts token t + 1: the targets are predicted by the last target.Length positions.
            var start = length - target.Length;
            // Normalise only the scored positions: the softmax over the vocabulary dominates otherwise.
            var positions = logits[b].narrow(0, start, target.Length);
            var logProbs = nn.functional.log_softmax(positions, -1);
            var targetIds = tensor(target.Select(t => (long)t).ToArray(), device: device).unsqueeze(1);
            var scores = HostValues.Doubles(logProbs.gather(1, targetIds).squeeze(1));
            var greedy = HostValues.Longs(positions.argmax(-1));
            results[batch[b]] = new ScoreResult(target, scores, scores.Sum(), greedy.Zip(target).All(p => p.First == p.Second));
        }
    }
}
