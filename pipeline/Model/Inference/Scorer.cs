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
public sealed class Scorer(CausalLM model, ITokenizer tokenizer, int batchSize = 8, long logitsBudgetBytes = Scorer.LogitsBudgetBytes)
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

    /// <summary>
    /// Scores (context, continuation) token pairs. Continuations of the same context share one forward over it
    /// (<see cref="ScoringRow"/>); rows are batched longest first, as many per forward as fit in
    /// <c>batchSize × ContextLength</c> tokens, and only the scored positions go through the vocabulary projection.
    /// Each pair's numbers equal scoring it alone, up to float rounding.
    /// </summary>
    public IReadOnlyList<ScoreResult> ScoreTokens(IReadOnlyList<(int[] Context, int[] Target)> rows, CancellationToken cancellationToken = default)
    {
        var maxLength = model.ContextLength;
        foreach (var (_, target) in rows)
            if (target.Length > maxLength)
                throw new ArgumentException($"a continuation of {target.Length} tokens exceeds the model's context of {maxLength} tokens");
        var results = new ScoreResult[rows.Count];
        for (int i = 0; i < rows.Count; i++)
            if (rows[i].Target.Length == 0) results[i] = new ScoreResult([], [], 0, true);
        var planned = ScoringRow.Plan(rows, maxLength).OrderByDescending(r => r.Length).ToList();
        long budget = (long)Math.Max(1, batchSize) * maxLength;
        using var _ = no_grad();
        for (int first = 0; first < planned.Count;)
        {
            cancellationToken.ThrowIfCancellationRequested();
            // Longest first: the first row sets the width, and rows are added while the padded batch fits the budget.
            int count = 1;
            while (first + count < planned.Count && (count + 1L) * planned[first].Length <= budget) count++;
            ScoreBatch(planned.GetRange(first, count), rows, results);
            first += count;
        }
        return results;
    }

    private void ScoreBatch(List<ScoringRow> batch, IReadOnlyList<(int[] Context, int[] Target)> pairs, ScoreResult[] results)
    {
        using var scope = NewDisposeScope();
        var device = model.Device;
        int width = batch.Max(r => r.Length);
        var ids = new long[batch.Count * width];
        var at = new List<long>();
        var targets = new List<long>();
        for (var b = 0; b < batch.Count; b++)
        {
            var row = batch[b];
            for (var t = 0; t < row.Length; t++) ids[b * width + t] = row.Tokens[t];
            foreach (var (pair, predictors) in row.Scored)
            {
                at.AddRange(predictors.Select(p => (long)b * width + p));
                targets.AddRange(pairs[pair].Target.Select(t => (long)t));
            }
        }
        // Plain rows need no layout: right padding is invisible to real tokens under causal attention.
        using var layout = batch.Any(r => r.HasBranches) ? Layout(batch, width, device) : null;
        var input = tensor(ids, [batch.Count, width], device: device);
        var positions = tensor(at.ToArray(), device: device);
        var targetIds = tensor(targets.ToArray(), device: device);
        var (logProbsOnDevice, greedyOnDevice) = (long)at.Count * model.Config.VocabSize * 4 <= logitsBudgetBytes
            ? ScoreLogits(model.Forward(input, layout: layout, logitsAt: positions), targetIds)
            : ScoreBySlices(model.ForwardHidden(input, layout), positions, targetIds);
        // Values leave the device through HostValues (zeros on meta, where nothing computed is a result).
        var scores = HostValues.Doubles(logProbsOnDevice);
        var greedy = HostValues.Longs(greedyOnDevice);
        int k = 0;
        foreach (var row in batch)
            foreach (var (pair, predictors) in row.Scored)
            {
                var target = pairs[pair].Target;
                var logProbs = scores[k..(k + predictors.Length)];
                results[pair] = new ScoreResult(target, logProbs, logProbs.Sum(), greedy[k..(k + predictors.Length)].SequenceEqual(target.Select(t => (long)t)));
                k += predictors.Length;
            }
    }

    /// <summary>
    /// The most the logits of one forward's scored positions may take (f32) before they are made a slice of positions at
    /// a time: 256 MB. At a real vocabulary a long held-out text is thousands of scored positions — 5,000 × 151,936 × 4 B
    /// is 3 GB. Below it (every batch of the embedded default) the projection is one matmul, as before.
    /// </summary>
    public const long LogitsBudgetBytes = 256L << 20;

    private static (Tensor LogProbs, Tensor Greedy) ScoreLogits(Tensor logits, Tensor targetIds) => (TargetLogProbs(logits, targetIds), logits.argmax(-1));

    /// <summary>The scored positions' log-probabilities and argmax from the hidden states, projecting a slice of positions at a time.</summary>
    private (Tensor LogProbs, Tensor Greedy) ScoreBySlices(Tensor hidden, Tensor positions, Tensor targetIds)
    {
        var flat = hidden.reshape(-1, hidden.shape[^1]);
        long n = positions.shape[0], slice = Devices.MixedPrecision.F32RowsWithin(logitsBudgetBytes, model.Config.VocabSize);
        var logProbs = new List<Tensor>();
        var greedy = new List<Tensor>();
        for (long first = 0; first < n; first += slice)
        {
            long count = Math.Min(slice, n - first);
            using var rows = Devices.DeviceOps.Rows(flat, positions.narrow(0, first, count));
            using var logits = model.LogitsOf(rows);
            var (p, g) = ScoreLogits(logits, targetIds.narrow(0, first, count));
            logProbs.Add(p);
            greedy.Add(g);
        }
        return (cat(logProbs, 0), cat(greedy, 0));
    }

    /// <summary>Rows normalised at once: 256 rows of an 8,192-token vocabulary are 8 MB of f32.</summary>
    private const int LogSoftmaxRows = 256;

    /// <summary>
    /// log_softmax(logits)[i, target[i]] for each row, normalising a slice of rows at a time: each row's numbers are
    /// log_softmax's own, but no second [N, V] tensor is made (for a batch of 2,048 scored tokens that is 67 MB, which
    /// the C allocator maps fresh from the kernel, page by page, on every batch).
    /// </summary>
    private static Tensor TargetLogProbs(Tensor logits, Tensor targetIds)
    {
        using var scope = NewDisposeScope();
        long rows = logits.shape[0];
        var slices = new List<Tensor>();
        for (long first = 0; first < rows; first += LogSoftmaxRows)
        {
            long count = Math.Min(LogSoftmaxRows, rows - first);
            using var logProbs = nn.functional.log_softmax(logits.narrow(0, first, count), -1);
            slices.Add(logProbs.gather(1, targetIds.narrow(0, first, count).unsqueeze(1)).squeeze(1));
        }
        return (slices.Count == 1 ? slices[0] : cat(slices, 0)).MoveToOuterDisposeScope();
    }

    private static TokenLayout Layout(List<ScoringRow> batch, int width, Device device)
    {
        var positions = new long[batch.Count * width];
        var visible = new bool[batch.Count * width * width];
        for (int b = 0; b < batch.Count; b++) batch[b].FillLayout(b, width, positions, visible);
        return TokenLayout.FromArrays(positions, visible, batch.Count, width, device);
    }
}
