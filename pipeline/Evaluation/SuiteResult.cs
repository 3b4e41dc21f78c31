namespace Forgetless.Evaluation;

/// <summary>A suite scored on one model: item scores and the metrics defined over them.</summary>
public sealed record SuiteResult(string Suite, SuiteType Type, SuiteRole Role, IReadOnlyList<ItemScore> Items,
    IReadOnlyList<MetricDefinition> Metrics)
{
    public int Count => Items.Count;

    public IReadOnlyList<int> All => Enumerable.Range(0, Items.Count).ToArray();

    public MetricDefinition Metric(string name) =>
        Metrics.FirstOrDefault(m => m.Name == name)
        ?? throw new KeyNotFoundException($"suite '{Suite}' has no metric '{name}'; it has {string.Join(", ", Metrics.Select(m => m.Name))}");

    public double Value(string metric) => Metric(metric).Aggregate(Items, All);

    /// <summary>Item indices per category (e.g. seen/unseen, Brown genre), for breakdowns.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<int>> Categories() =>
        Enumerable.Range(0, Items.Count)
            .Where(i => Items[i].Category is not null)
            .GroupBy(i => Items[i].Category!)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => (IReadOnlyList<int>)g.ToList(), StringComparer.Ordinal);
}
