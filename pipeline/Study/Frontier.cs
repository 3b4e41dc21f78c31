namespace Forgetless.Study;

/// <summary>A candidate of a Pareto comparison: a name and the numbers where smaller is better.</summary>
public sealed record FrontierPoint(string Name, IReadOnlyList<double> Minimize);

/// <summary>
/// The Pareto frontier: the points no other point dominates. A dominates B when A is no worse on every objective and
/// better on at least one; equal points do not dominate each other, so ties are on the frontier together. No units are
/// mixed: each old suite's forgetting and each new suite's gain is an objective of its own.
/// </summary>
public static class Frontier
{
    public static IReadOnlyList<string> Of(IReadOnlyList<FrontierPoint> points) =>
        points.Where(p => !points.Any(q => Dominates(q, p))).Select(p => p.Name).ToList();

    public static bool Dominates(FrontierPoint a, FrontierPoint b)
    {
        if (a.Minimize.Count != b.Minimize.Count)
            throw new ArgumentException($"{a.Name} has {a.Minimize.Count} objectives, {b.Name} {b.Minimize.Count}");
        bool better = false;
        for (int i = 0; i < a.Minimize.Count; i++)
        {
            if (a.Minimize[i] > b.Minimize[i]) return false;
            if (a.Minimize[i] < b.Minimize[i]) better = true;
        }
        return better;
    }

    /// <summary>Forgetting on every old suite (less is better) against gain on every new suite (more is better); cells that reached the target only.</summary>
    public static IReadOnlyList<string> OfLearning(IEnumerable<CellResult> cells) => Of(cells.Where(c => c.Status == CellStatus.Reached)
        .Select(c => new FrontierPoint(c.Name, [.. c.Forgetting.Select(f => f.Value), .. c.Learning.Select(l => -l.Value)])).ToList());

    /// <summary>Forgetting on every old suite against the training tokens needed to reach the target; cells that reached it only.</summary>
    public static IReadOnlyList<string> OfCost(IEnumerable<CellResult> cells) => Of(cells.Where(c => c.Status == CellStatus.Reached)
        .Select(c => new FrontierPoint(c.Name, [.. c.Forgetting.Select(f => f.Value), c.Tokens])).ToList());
}
