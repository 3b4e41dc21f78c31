namespace Forgetless.Evaluation;

/// <summary>A 95% (or other) interval from resampling items with replacement.</summary>
public sealed record Interval(double Low, double High)
{
    public bool Contains(double x) => x >= Low && x <= High;
}

/// <summary>
/// Paired bootstrap: base and candidate are scored on the same items, so each resample draws one
/// set of item indices and computes the metric on both, keeping their correlation. Seeded, so the
/// same inputs give the same interval.
/// </summary>
public static class Bootstrap
{
    public const int DefaultResamples = 1000;

    /// <summary>Interval of candidate − base for <paramref name="metric"/>, over items <paramref name="subset"/> (all when null).</summary>
    public static Interval PairedDifference(MetricDefinition metric, IReadOnlyList<ItemScore> baseItems, IReadOnlyList<ItemScore> candidateItems,
        int seed, double confidence = 0.95, int resamples = DefaultResamples, IReadOnlyList<int>? subset = null)
    {
        if (baseItems.Count != candidateItems.Count)
            throw new ArgumentException($"paired bootstrap needs the same items: base has {baseItems.Count}, candidate {candidateItems.Count}");
        var pool = subset ?? Enumerable.Range(0, baseItems.Count).ToArray();
        var random = new Random(seed);
        var diffs = new double[resamples];
        var idx = new int[pool.Count];
        for (int r = 0; r < resamples; r++)
        {
            for (int i = 0; i < idx.Length; i++) idx[i] = pool[random.Next(pool.Count)];
            diffs[r] = metric.Aggregate(candidateItems, idx) - metric.Aggregate(baseItems, idx);
        }
        return Percentiles(diffs, confidence);
    }

    /// <summary>Standard error of a metric by bootstrap (for ratio metrics, where std/√n does not apply).</summary>
    public static double StandardError(MetricDefinition metric, IReadOnlyList<ItemScore> items, int seed, int resamples = DefaultResamples)
    {
        if (items.Count < 2) return double.NaN;
        var random = new Random(seed);
        var values = new double[resamples];
        var idx = new int[items.Count];
        for (int r = 0; r < resamples; r++)
        {
            for (int i = 0; i < idx.Length; i++) idx[i] = random.Next(items.Count);
            values[r] = metric.Aggregate(items, idx);
        }
        double mean = values.Average();
        return Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Length - 1));
    }

    private static Interval Percentiles(double[] values, double confidence)
    {
        Array.Sort(values);
        double tail = (1 - confidence) / 2;
        return new Interval(Quantile(values, tail), Quantile(values, 1 - tail));
    }

    private static double Quantile(double[] sorted, double q)
    {
        double position = q * (sorted.Length - 1);
        int lower = (int)Math.Floor(position);
        int upper = Math.Min(lower + 1, sorted.Length - 1);
        return sorted[lower] + (position - lower) * (sorted[upper] - sorted[lower]);
    }
}
