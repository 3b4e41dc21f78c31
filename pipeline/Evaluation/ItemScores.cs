namespace Forgetless.Evaluation;

/// <summary>What one evaluation item contributed: raw numbers from which every metric is aggregated.</summary>
public sealed record ItemScore(string? Category, IReadOnlyDictionary<string, double> Values)
{
    /// <summary>What the model generated (generation suites), kept for side-by-side samples in reports.</summary>
    public string? Output { get; init; }
}

/// <summary>
/// How a metric is computed from item scores. Taking indices lets the bootstrap resample items and
/// recompute the metric, which also works for ratios such as perplexity (not a mean of items).
/// </summary>
public sealed record MetricDefinition(string Name, bool HigherIsBetter, Func<IReadOnlyList<ItemScore>, IReadOnlyList<int>, double> Aggregate)
{
    /// <summary>
    /// The mean of one item value (accuracy-like metrics) over the items that have it (a cloze suite
    /// scores acc_choice only on items with candidates); NaN when none has it.
    /// </summary>
    public static MetricDefinition Mean(string name, bool higherIsBetter = true, string? value = null) =>
        new(name, higherIsBetter, (items, idx) => MeanOfPresent(items, idx, value ?? name))
        {
            MeanOf = value ?? name,
        };

    /// <summary>The item value this metric is the plain mean of, or null for ratio metrics.</summary>
    public string? MeanOf { get; init; }

    /// <summary>
    /// Standard error over <paramref name="idx"/>: sample std / √n for means (as lm-eval reports), by
    /// seeded bootstrap for ratio metrics such as perplexity.
    /// </summary>
    public double StandardError(IReadOnlyList<ItemScore> items, IReadOnlyList<int> idx, int seed, int resamples = Bootstrap.DefaultResamples)
    {
        if (idx.Count < 2) return double.NaN;
        if (MeanOf is { } key)
        {
            var values = idx.Where(i => items[i].Values.ContainsKey(key)).Select(i => items[i].Values[key]).ToList();
            if (values.Count < 2) return double.NaN;
            double mean = values.Average();
            double variance = values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1);
            return Math.Sqrt(variance / values.Count);
        }
        var subset = idx.Select(i => items[i]).ToList();
        return Bootstrap.StandardError(this, subset, seed, resamples);
    }

    /// <summary>
    /// lm-eval's <c>perplexity</c> aggregation of a <c>loglikelihood</c> task (LAMBADA): exp(−mean over items of each
    /// item's summed log-likelihood) = exp(Σ nll / number of items) — per item, not per token.
    /// </summary>
    public static MetricDefinition PerplexityOfItems(string name, string nll) =>
        new(name, false, (items, idx) => Math.Exp(Sum(items, idx, nll) / idx.Count));

    /// <summary>exp(Σ nll / Σ count): perplexity per token, word or byte (lm-eval's <c>weighted_perplexity</c>).</summary>
    public static MetricDefinition Perplexity(string name, string nll, string count) =>
        new(name, false, (items, idx) => Math.Exp(Sum(items, idx, nll) / Sum(items, idx, count)));

    /// <summary>Σ nll / (ln 2 · Σ bytes): bits per UTF-8 byte, comparable across tokenizers.</summary>
    public static MetricDefinition BitsPerByte(string name, string nll, string bytes) =>
        new(name, false, (items, idx) => Sum(items, idx, nll) / (Math.Log(2) * Sum(items, idx, bytes)));

    /// <summary>Σ nll / Σ count: mean negative log-likelihood per token, in nats.</summary>
    public static MetricDefinition MeanPer(string name, string nll, string count) =>
        new(name, false, (items, idx) => Sum(items, idx, nll) / Sum(items, idx, count));

    private static double MeanOfPresent(IReadOnlyList<ItemScore> items, IReadOnlyList<int> idx, string key)
    {
        double sum = 0;
        int count = 0;
        foreach (var i in idx)
        {
            if (!items[i].Values.TryGetValue(key, out var v)) continue;
            sum += v;
            count++;
        }
        return count == 0 ? double.NaN : sum / count;
    }

    private static double Sum(IReadOnlyList<ItemScore> items, IReadOnlyList<int> idx, string key)
    {
        double sum = 0;
        foreach (var i in idx) sum += items[i].Values[key];
        return sum;
    }
}
