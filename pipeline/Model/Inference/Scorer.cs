using Forgetless.Model.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Model.Inference;

/// <summary>
/// Log-likelihood scoring, lm-evaluation-harness style. Tokenisation of a context/continuation pair:
/// trailing spaces of the context move to the continuation, then the continuation's tokens are
/// <c>encode(context + continuation)</c> minus the first <c>len(encode(context))</c> tokens, so that
/// merges across the boundary are scored as the model would see them. An empty context (and a plain
/// text row) is conditioned on the tokenizer's BOS token, else its EOS token; with neither, the first
/// token is context only. Too-long inputs lose tokens from the left; the scored tokens must fit.
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

    public IReadOnlyList<ScoreResult> Score(IReadOnlyList<ScoreRequest> requests, CancellationToken cancellationToken = default) =>
        ScoreTokens(requests.Select(Tokenize).ToList(), cancellationToken);

    /// <summary>Token ids of the context and of the tokens to score, as described on the class.</summary>
    public (int[] Context, int[] Target) Tokenize(ScoreRequest request)
    {
        int[] context, target;
        if (request.Text is { } text)
        {
            if (request.Context is not null || request.Continuation is not null)
                throw new ArgumentException("a score request has either text, or context and continuation, not both");
            context = [];
            target = tokenizer.Encode(text);
        }
        else
        {
            var ctx = request.Context ?? throw new ArgumentException("a score request needs text, or context and continuation");
            var cont = request.Continuation ?? throw new ArgumentException("a score request with a context needs a continuation");
            var trimmed = ctx.TrimEnd(' ');
            cont = ctx[trimmed.Length..] + cont;
            context = tokenizer.Encode(trimmed);
            var whole = tokenizer.Encode(trimmed + cont);
            target = whole.Length >= context.Length && whole.AsSpan(0, context.Length).SequenceEqual(context)
                ? whole[context.Length..]
                : tokenizer.Encode(cont); // the boundary merged differently: fall back to separate encoding
        }
        if (context.Length == 0)
        {
            if ((tokenizer.BosId ?? tokenizer.EosId) is { } start) context = [start];
            else if (target.Length > 0) (context, target) = ([target[0]], target[1..]);
        }
        return (context, target);
    }

    public IReadOnlyList<ScoreResult> ScoreTokens(IReadOnlyList<(int[] Context, int[] Target)> rows, CancellationToken cancellationToken = default)
    {
        var maxLength = model.Config.MaxPositionEmbeddings;
        var inputs = rows.Select(r =>
        {
            if (r.Target.Length > maxLength)
                throw new ArgumentException($"{r.Target.Length} tokens to score exceed the model's {maxLength} positions");
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
        var logits = model.Forward(tensor(ids, [batch.Length, width]), tensor(mask, [batch.Length, width]));
        for (var b = 0; b < batch.Length; b++)
        {
            var (_, target) = rows[batch[b]];
            var length = inputs[batch[b]].Length;
            // Position t predicts token t + 1: the targets are predicted by the last target.Length positions.
            var start = length - target.Length;
            // Normalise only the scored positions: the softmax over the vocabulary dominates otherwise.
            var positions = logits[b].narrow(0, start, target.Length);
            var logProbs = nn.functional.log_softmax(positions, -1);
            var targetIds = tensor(target.Select(t => (long)t).ToArray()).unsqueeze(1);
            var scores = logProbs.gather(1, targetIds).squeeze(1).to(ScalarType.Float64).data<double>().ToArray();
            var greedy = positions.argmax(-1).data<long>().ToArray();
            results[batch[b]] = new ScoreResult(target, scores, scores.Sum(), greedy.Zip(target).All(p => p.First == p.Second));
        }
    }
}
