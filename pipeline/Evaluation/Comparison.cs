namespace Forgetless.Evaluation;

/// <summary>
/// One metric on base and candidate over the same items. <see cref="Difference"/> is candidate − base
/// in the metric's own units; <see cref="Worsening"/> turns it so that positive always means the
/// candidate got worse (for perplexity: went up), which is what forgetting and gates talk about.
/// </summary>
public sealed record MetricComparison(string Metric, bool HigherIsBetter, double Base, double Candidate, Interval DifferenceInterval,
    double BaseStderr, double CandidateStderr)
{
    public double Difference => Candidate - Base;

    public double Worsening => HigherIsBetter ? -Difference : Difference;

    public Interval WorseningInterval => HigherIsBetter
        ? new Interval(-DifferenceInterval.High, -DifferenceInterval.Low)
        : DifferenceInterval;

    /// <summary>Worsening as a share of the base value (0.1 = 10% worse).</summary>
    public double RelativeWorsening => Worsening / Math.Abs(Base);
}

/// <summary>The metrics of one category of items (seen/unseen facts, a Brown genre).</summary>
public sealed record CategoryComparison(string Category, int Count, IReadOnlyList<MetricComparison> Metrics);

/// <summary>A suite scored on base and candidate: every metric compared, overall and per category.</summary>
public sealed record SuiteComparison(string Suite, SuiteType Type, SuiteRole Role, int Count, IReadOnlyList<MetricComparison> Metrics,
    IReadOnlyList<CategoryComparison> Categories)
{
    public MetricComparison Metric(string name) => Metrics.First(m => m.Metric == name);

    /// <summary>
    /// Compares <paramref name="candidate"/> with <paramref name="baseline"/> item by item. Intervals are
    /// 95% (or <paramref name="confidence"/>) paired-bootstrap intervals of candidate − base, seeded.
    /// </summary>
    public static SuiteComparison Of(SuiteResult baseline, SuiteResult candidate, int seed, double confidence = 0.95,
        int resamples = Bootstrap.DefaultResamples)
    {
        if (baseline.Count != candidate.Count)
            throw new InvalidOperationException($"suite '{baseline.Suite}': base has {baseline.Count} items, candidate {candidate.Count}; they must be scored on the same items");
        IReadOnlyList<MetricComparison> Compare(IReadOnlyList<int> idx) => baseline.Metrics.Select(m => new MetricComparison(
            m.Name, m.HigherIsBetter,
            m.Aggregate(baseline.Items, idx), m.Aggregate(candidate.Items, idx),
            Bootstrap.PairedDifference(m, baseline.Items, candidate.Items, seed, confidence, resamples, idx),
            m.StandardError(baseline.Items, idx, seed, resamples), m.StandardError(candidate.Items, idx, seed, resamples))).ToList();

        var categories = baseline.Categories()
            .Select(c => new CategoryComparison(c.Key, c.Value.Count, Compare(c.Value)))
            .ToList();
        return new SuiteComparison(baseline.Suite, baseline.Type, baseline.Role, baseline.Count, Compare(baseline.All), categories);
    }
}
