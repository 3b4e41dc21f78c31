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
        int seed, double confidence = 0.95, int resamples = DefaultResamples, IReadOnlyList<int>? subset = null) =>
        Paired(metric, baseItems, candidateItems, (b, c) => c - b, seed, confidence, resamples, subset);

    /// <summary>
    /// Interval of any statistic of (base value, candidate value), recomputed on each resample of
    /// paired items — e.g. a relative drop (b − c) / b, whose interval is not a rescaled difference interval.
    /// </summary>
    public static Interval Paired(MetricDefinition metric, IReadOnlyList<ItemScore> baseItems, IReadOnlyList<ItemScore> candidateItems,
        Func<double, double, double> statistic, int seed, double confidence = 0.95, int resamples = DefaultResamples,
        IReadOnlyList<int>? subset = null) =>
        PairedResamples(metric, baseItems, candidateItems, statistic, seed, resamples, subset).Interval(confidence);

    /// <summary>The statistic on each paired resample, for intervals and one-sided bounds of one set of draws.</summary>
    public static Resamples PairedResamples(MetricDefinition metric, IReadOnlyList<ItemScore> baseItems, IReadOnlyList<ItemScore> candidateItems,
        Func<double, double, double> statistic, int seed, int resamples = DefaultResamples, IReadOnlyList<int>? subset = null)
    {
        if (baseItems.Count != candidateItems.Count)
            throw new ArgumentException($"paired bootstrap needs the same items: base has {baseItems.Count}, candidate {candidateItems.Count}");
        var pool = subset ?? Enumerable.Range(0, baseItems.Count).ToArray();
        if (pool.Count == 0) return new Resamples([]);
        var random = new Random(seed);
        var values = new double[resamples];
        var idx = new int[pool.Count];
        for (int r = 0; r < resamples; r++)
        {
            for (int i = 0; i < idx.Length; i++) idx[i] = pool[random.Next(pool.Count)];
            values[r] = statistic(metric.Aggregate(baseItems, idx), metric.Aggregate(candidateItems, idx));
        }
        return new Resamples(values);
    }

    /// <summary>Percentile interval of the metric itself on one model (for absolute min/max gates).</summary>
    public static Interval Single(MetricDefinition metric, IReadOnlyList<ItemScore> items, int seed, double confidence = 0.95,
        int resamples = DefaultResamples, IReadOnlyList<int>? subset = null) =>
        Paired(metric, items, items, (_, c) => c, seed, confidence, resamples, subset);

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
}

/// <summary>A statistic's bootstrap distribution (NaN resamples, e.g. 0/0 on a degenerate draw, left out), sorted.</summary>
public sealed class Resamples
{
    private readonly double[] sorted;

    public Resamples(IEnumerable<double> values)
    {
        sorted = values.Where(v => !double.IsNaN(v)).ToArray();
        Array.Sort(sorted);
    }

    /// <summary>The central percentile interval of coverage <paramref name="confidence"/>.</summary>
    public Interval Interval(double confidence)
    {
        double tail = (1 - confidence) / 2;
        return new Interval(Quantile(tail), Quantile(1 - tail));
    }

    /// <summary>The <paramref name="q"/> quantile, linear between order statistics (numpy's default); NaN when empty.</summary>
    public double Quantile(double q)
    {
        if (sorted.Length == 0) return double.NaN;
        double position = q * (sorted.Length - 1);
        int lower = (int)Math.Floor(position);
        int upper = Math.Min(lower + 1, sorted.Length - 1);
        return sorted[lower] + (position - lower) * (sorted[upper] - sorted[lower]);
    }
}
