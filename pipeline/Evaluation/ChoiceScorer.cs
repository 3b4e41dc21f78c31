using Forgetless.Model.Devices;
using Forgetless.Model.Inference;
using static TorchSharp.torch;

namespace Forgetless.Evaluation;

/// <summary>
/// Log-likelihoods of several continuations of one context (multiple choice, cloze candidates).
/// The context runs through the model once; the continuations then run as one batch against a
/// copy of its key/value cache. Tokenisation is exactly <see cref="Scorer.Tokenize"/>'s, so the
/// numbers equal scoring each (context, continuation) pair on its own.
/// </summary>
public sealed class ChoiceScorer(Scorer scorer)
{
    public IReadOnlyList<ScoreResult> Score(string context, IReadOnlyList<string> continuations)
    {
        var rows = continuations.Select(c => scorer.Tokenize(ScoreRequest.ForContinuation(context, c))).ToList();
        var shared = rows[0].Context;
        int longest = rows.Max(r => r.Target.Length);
        int maxPositions = scorer.Model.ContextLength;
        bool canShare = rows.All(r => r.Context.AsSpan().SequenceEqual(shared) && r.Target.Length > 0) && longest < maxPositions;
        if (!canShare) return scorer.ScoreTokens(rows);
        if (shared.Length + longest - 1 > maxPositions) shared = shared[^(maxPositions - longest + 1)..];

        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var model = scorer.Model;
        using var cache = model.NewCache();
        var device = model.Device;
        var contextLogits = model.Forward(tensor(shared.Select(t => (long)t).ToArray(), [1, shared.Length], device: device), cache: cache);
        var first = nn.functional.log_softmax(contextLogits[0, -1], -1);
        long firstArgmax = HostValues.Longs(first.argmax())[0];
        var firstLogProbs = HostValues.Floats(first);

        var results = new ScoreResult[rows.Count];
        var longer = Enumerable.Range(0, rows.Count).Where(i => rows[i].Target.Length > 1).ToList();
        var rest = new Dictionary<int, (double[] LogProbs, bool Greedy)>();
        if (longer.Count > 0)
        {
            using var batchCache = cache.RepeatBatch(longer.Count);
            int width = longer.Max(i => rows[i].Target.Length - 1);
            var ids = new long[longer.Count * width];
            var mask = new long[longer.Count * width];
            for (int b = 0; b < longer.Count; b++)
            {
                var target = rows[longer[b]].Target;
                for (int t = 0; t < target.Length - 1; t++)
                {
                    ids[b * width + t] = target[t];
                    mask[b * width + t] = 1;
                }
            }
            var logits = model.Forward(tensor(ids, [longer.Count, width], device: device), tensor(mask, [longer.Count, width], device: device), batchCache);
            var logProbs = nn.functional.log_softmax(logits, -1);
            var argmax = logits.argmax(-1);
            for (int b = 0; b < longer.Count; b++)
            {
                var target = rows[longer[b]].Target;
                var next = tensor(target[1..].Select(t => (long)t).ToArray(), device: device).unsqueeze(1);
                var scores = HostValues.Doubles(logProbs[b].narrow(0, 0, target.Length - 1).gather(1, next).squeeze(1));
                var greedy = HostValues.Longs(argmax[b].narrow(0, 0, target.Length - 1)).Zip(target[1..]).All(p => p.First == p.Second);
                rest[longer[b]] = (scores, greedy);
            }
        }
        for (int i = 0; i < rows.Count; i++)
        {
            var target = rows[i].Target;
            var logProbs = new List<double> { firstLogProbs[target[0]] };
            bool greedy = firstArgmax == target[0];
            if (rest.TryGetValue(i, out var more))
            {
                logProbs.AddRange(more.LogProbs);
                greedy &= more.Greedy;
            }
            results[i] = new ScoreResult(target, logProbs, logProbs.Sum(), greedy);
        }
        return results;
    }
}
