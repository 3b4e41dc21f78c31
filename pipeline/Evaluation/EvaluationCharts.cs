using ScottPlot;

namespace Forgetless.Evaluation;

/// <summary>Charts for report.html, rendered headless by ScottPlot as inline SVG (the page stays one file).</summary>
public static class EvaluationCharts
{
    /// <summary>The headline metric of each suite kind, shown in the delta chart.</summary>
    private static readonly string[] Headline = ["bits_per_byte", "token_perplexity", "acc_norm", "acc_choice", "acc", "normalized_match", "exact_match"];

    /// <summary>
    /// Per suite, the change of its headline metric with its interval, oriented so that up is better:
    /// accuracy-like metrics in percentage points, perplexity-like metrics in percent of the base value.
    /// </summary>
    public static string Deltas(EvaluationResult result)
    {
        var plot = new Plot();
        var labels = new List<string>();
        var ys = new List<double>();
        var lows = new List<double>();
        var highs = new List<double>();
        foreach (var sc in result.Comparisons)
        {
            var m = Headline.Select(h => sc.Metrics.FirstOrDefault(x => x.Metric == h)).FirstOrDefault(x => x is not null) ?? sc.Metrics[0];
            bool rate = m.HigherIsBetter;
            double scale = rate ? 100 : 100 / Math.Abs(m.Base);
            double better = -m.Worsening * scale;
            var w = m.WorseningInterval;
            labels.Add($"{sc.Suite} {m.Metric} ({(sc.Role == SuiteRole.Old ? "old" : "new")}, {(rate ? "pts" : "%")})");
            ys.Add(Finite(better));
            lows.Add(Finite(better - (-w.High * scale)));
            highs.Add(Finite(-w.Low * scale - better));
        }
        var xs = Enumerable.Range(0, ys.Count).Select(i => (double)i).ToArray();
        var bars = plot.Add.Bars(xs, ys.ToArray());
        for (int i = 0; i < bars.Bars.Count; i++)
            bars.Bars[i].FillColor = ys[i] >= 0 ? Colors.SeaGreen : Colors.IndianRed;
        var errors = new ScottPlot.Plottables.ErrorBar(xs, ys.ToArray(), null, null, highs.ToArray(), lows.ToArray());
        plot.Add.Plottable(errors);
        errors.Color = Colors.Black;
        plot.Add.HorizontalLine(0, 1, Colors.Gray);
        plot.Axes.Bottom.SetTicks(xs, labels.ToArray());
        plot.Axes.Bottom.TickLabelStyle.Rotation = 20;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
        plot.Axes.Margins(bottom: 0);
        plot.Title("Candidate vs base (up = better), with paired-bootstrap intervals");
        plot.YLabel("improvement");
        return Svg(plot, 900, 420);
    }

    /// <summary>Every series of FineTune's metrics.jsonl against its step; losses share one chart.</summary>
    public static string Curves(LearningCurves curves)
    {
        var plot = new Plot();
        foreach (var (name, points) in curves.Series)
        {
            var line = plot.Add.Scatter(points.Select(p => p.Step).ToArray(), points.Select(p => p.Value).ToArray());
            line.LegendText = name;
            line.MarkerSize = points.Count > 50 ? 0 : 4;
        }
        plot.ShowLegend();
        plot.XLabel("step");
        plot.YLabel("value");
        plot.Title("Learning curves");
        return Svg(plot, 900, 380);
    }

    private static double Finite(double x) => double.IsFinite(x) ? x : 0;

    private static string Svg(Plot plot, int width, int height) => plot.GetSvgXml(width, height);
}
