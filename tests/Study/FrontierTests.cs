using Forgetless.Study;

namespace Forgetless.Tests.Study;

/// <summary>The Pareto frontier on hand-made points; every expected frontier below was worked out by hand.</summary>
public sealed class FrontierTests
{
    private static FrontierPoint P(string name, params double[] minimize) => new(name, minimize);

    [Fact]
    public void A_point_worse_on_every_objective_is_off_the_frontier()
    {
        // (forgetting, −learning): a=(1,−5) b=(2,−3) c=(0.5,−2) d=(3,−6) e=(2,−2).
        // b is dominated by a (1≤2, −5≤−3); e by a and by c (0.5≤2, −2≤−2 with one strict); a, c, d are not dominated.
        var points = new[] { P("a", 1, -5), P("b", 2, -3), P("c", 0.5, -2), P("d", 3, -6), P("e", 2, -2) };
        Assert.Equal(["a", "c", "d"], Frontier.Of(points));
    }

    [Fact]
    public void Equal_points_are_on_the_frontier_together()
    {
        // x and y are the same point: neither is better on any objective, so neither dominates the other.
        var points = new[] { P("x", 1, 1), P("y", 1, 1), P("z", 1, 2) };
        Assert.Equal(["x", "y"], Frontier.Of(points));
    }

    [Fact]
    public void Equal_on_one_objective_and_better_on_the_other_dominates()
    {
        Assert.True(Frontier.Dominates(P("a", 1, 2), P("b", 1, 3)));
        Assert.False(Frontier.Dominates(P("a", 1, 3), P("b", 1, 3)));
        Assert.False(Frontier.Dominates(P("a", 0, 4), P("b", 1, 3)));
        Assert.Equal(["a"], Frontier.Of([P("a", 1, 2), P("b", 1, 3)]));
    }

    [Fact]
    public void Several_suites_are_objectives_of_their_own_and_never_summed()
    {
        // Summed, q (0+9=9) would beat p (5+5=10); per suite neither dominates the other.
        Assert.Equal(["p", "q"], Frontier.Of([P("p", 5, 5), P("q", 0, 9)]));
    }

    [Fact]
    public void Cells_that_missed_the_target_are_never_on_a_frontier_and_never_dominate()
    {
        // "missed" forgot least and learned most, but did not reach the target: it is left out, so "worse" is not dominated by it.
        var cells = new[]
        {
            Cell("reached", CellStatus.Reached, forgetting: 2, gain: 10, tokens: 100),
            Cell("worse", CellStatus.Reached, forgetting: 3, gain: 12, tokens: 50),
            Cell("missed", CellStatus.Missed, forgetting: 0, gain: 20, tokens: 10),
        };
        Assert.Equal(["reached", "worse"], Frontier.OfLearning(cells));
        Assert.Equal(["reached", "worse"], Frontier.OfCost(cells));
        var report = new StudyReport(new StudyLevel(1.5), 40, cells, []);
        // Neither reached cell's forgetting interval lies above zero ([−1, 5] and [0, 6]), so tokens decide: 50 < 100.
        Assert.Equal("worse", report.Recommended!.Name);
        Assert.Contains("missed did not and is not compared", report.Recommendation());
    }

    [Fact]
    public void Cost_frontier_trades_forgetting_for_tokens()
    {
        // (forgetting, tokens): a=(1, 900) b=(2, 300) c=(2, 400) d=(1, 1000). c is dominated by b, d by a.
        var cells = new[]
        {
            Cell("a", CellStatus.Reached, 1, 5, 900), Cell("b", CellStatus.Reached, 2, 5, 300),
            Cell("c", CellStatus.Reached, 2, 5, 400), Cell("d", CellStatus.Reached, 1, 5, 1000),
        };
        Assert.Equal(["a", "b"], Frontier.OfCost(cells));
        // On learning all four have gain 5; a and d forget least (1) and tie, so both are on it.
        Assert.Equal(["a", "d"], Frontier.OfLearning(cells));
    }

    [Fact]
    public void No_cell_reached_gives_no_recommendation()
    {
        var report = new StudyReport(new StudyLevel(0.5), 10, [Cell("m", CellStatus.Missed, 1, 1, 1)], []);
        Assert.Null(report.Recommended);
        Assert.Empty(report.LearningFrontier);
        Assert.Contains("No recommendation", report.Recommendation());
        Assert.Contains("did not reach validation task loss 0.5", report.JUnit().ToString());
    }

    private static CellResult Cell(string name, CellStatus status, double forgetting, double gain, long tokens) => new(
        name, [], "lora", status, 10, tokens, status == CellStatus.Reached ? "target_validation_loss" : "steps", 1.0, 100,
        [new SuiteChange("old", "bits_per_byte", "% of base", forgetting, forgetting - 3, forgetting + 3)],
        [new SuiteChange("new", "acc", "pts", gain, gain - 1, gain + 1)], []);
}
