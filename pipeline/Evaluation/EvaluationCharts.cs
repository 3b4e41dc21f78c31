using ScottPlot;

namespace Forgetless.Evaluation;

/// <summary>
/// Charts for report.html, rendered headless by ScottPlot as inline SVG (the page stays one file). One panel per unit:
/// numbers of different units never share an axis, every axis says what it measures, legends sit outside the data.
/// </summary>
public static class EvaluationCharts
{
    /// <summary>The headline metric of each suite kind, in this order of preference (the delta chart, a study's table).</summary>
    public static readonly IReadOnlyList<string> Headline = ["bits_per_byte", "token_perplexity", "acc_norm", "acc_choice", "acc", "normalized_match", "exact_match"];

    /// <summary>
    /// Per suite, the change of its headline metric with its interval, oriented so that right is better: one panel for
    /// accuracy-like metrics in percentage points, one for perplexity-like metrics in percent of the base value.
    /// Horizontal bars, so the suite names are read in full on the left.
    /// </summary>
    public static IReadOnlyList<string> Deltas(EvaluationResult result)
    {
        var rows = result.Comparisons.Select(sc =>
        {
            var m = Headline.Select(h => sc.Metrics.FirstOrDefault(x => x.Metric == h)).FirstOrDefault(x => x is not null) ?? sc.Metrics[0];
            double scale = m.HigherIsBetter ? 100 : 100 / Math.Abs(m.Base);
            var w = m.WorseningInterval;
            return (Label: $"{sc.Suite} ({(sc.Role == SuiteRole.Old ? "old" : "new")}) {m.Metric}", Rate: m.HigherIsBetter,
                Better: Finite(-m.Worsening * scale), Low: Finite(-w.High * scale), High: Finite(-w.Low * scale));
        }).ToList();
        var panels = new List<string>();
        foreach (var rate in new[] { true, false })
        {
            var group = rows.Where(r => r.Rate == rate).ToList();
            if (group.Count == 0) continue;
            var plot = new Plot();
            var ys = Enumerable.Range(0, group.Count).Select(i => (double)(group.Count - 1 - i)).ToArray();
            var values = group.Select(r => r.Better).ToArray();
            var bars = plot.Add.Bars(ys, values);
            bars.Horizontal = true;
            for (int i = 0; i < bars.Bars.Count; i++)
                bars.Bars[i].FillColor = values[i] >= 0 ? Colors.SeaGreen : Colors.IndianRed;
            var errors = new ScottPlot.Plottables.ErrorBar(values, ys,
                group.Select(r => r.High - r.Better).ToArray(), group.Select(r => r.Better - r.Low).ToArray(), null, null) { Color = Colors.Black };
            plot.Add.Plottable(errors);
            plot.Add.VerticalLine(0, 1, Colors.Gray);
            plot.Axes.Left.SetTicks(ys, group.Select(r => r.Label).ToArray());
            plot.Axes.Margins(left: 0.1, right: 0.1);
            string unit = rate ? "percentage points" : "% of the base value";
            plot.Title($"Change per suite, {unit}, with 95% intervals");
            plot.XLabel($"candidate − base, {unit} (right = better)");
            panels.Add(Svg(plot, 900, 90 + 55 * group.Count));
        }
        return panels;
    }

    /// <summary>
    /// FineTune's metrics.jsonl against the step: the losses (nats per token) in one panel, every other series
    /// (learning rate, tokens, tokens per second, a term's value) in a panel of its own.
    /// </summary>
    public static IReadOnlyList<string> Curves(LearningCurves curves)
    {
        var losses = curves.Series.Where(s => s.Key.EndsWith("loss", StringComparison.Ordinal)).ToList();
        var panels = new List<string>();
        if (losses.Count > 0) panels.Add(Panel(losses, "Losses", "loss (nats per token)"));
        foreach (var other in curves.Series.Where(s => !s.Key.EndsWith("loss", StringComparison.Ordinal)))
            panels.Add(Panel([other], other.Key, other.Key));
        return panels;
    }

    private static string Panel(IReadOnlyList<KeyValuePair<string, IReadOnlyList<(double Step, double Value)>>> series, string title, string yLabel)
    {
        var plot = new Plot();
        foreach (var (name, points) in series)
        {
            var line = plot.Add.Scatter(points.Select(p => p.Step).ToArray(), points.Select(p => p.Value).ToArray());
            line.LegendText = name;
            line.MarkerSize = points.Count > 50 ? 0 : 4;
        }
        if (series.Count > 1) plot.ShowLegend(Edge.Right);
        plot.XLabel("step");
        plot.YLabel(yLabel);
        plot.Title(title);
        return Svg(plot, 900, series.Count > 1 ? 360 : 260);
    }

    private static double Finite(double x) => double.IsFinite(x) ? x : 0;

    private static string Svg(Plot plot, int width, int height) => plot.GetSvgXml(width, height);
}
