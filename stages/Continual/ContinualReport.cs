using System.Globalization;
using System.Net;
using System.Text;
using Forgetless.Continual;
using Forgetless.Evaluation;
using Forgetless.Runs;
using ScottPlot;

namespace Forgetless.Stages.Continual;

/// <summary>One strategy's numbers as summary.json records them.</summary>
public sealed record StrategySummary(
    string Name,
    string Description,
    Isolation Isolation,
    double[][] R,
    ContinualMetrics Metrics,
    ContinualIntervals Intervals,
    IReadOnlyList<SortedDictionary<string, SortedDictionary<string, double>>> OldSuites,
    RouterResult? Router);

/// <summary>summary.json of <c>forgetless continual</c>.</summary>
public sealed record ContinualSummary(IReadOnlyList<string> Tasks, IReadOnlyList<string> Metrics, double[] Base,
    SortedDictionary<string, SortedDictionary<string, double>> BaseOldSuites, IReadOnlyList<StrategySummary> Strategies,
    IReadOnlyList<ContinualGateVerdict> Gates);

/// <summary>
/// The results of a task sequence: summary.json (snake_case), report.md and report.html — per strategy the accuracy
/// matrix R (a table and a heatmap), ACC, BWT, FWT and forgetting with their bootstrap intervals, the old-knowledge
/// suites after every step, and for isolated tasks the router's accuracy; across strategies a comparison table and one
/// line chart per task (its score after every step).
/// </summary>
public static class ContinualReport
{
    public const string SummaryFile = "summary.json";
    public const string MarkdownFile = "report.md";
    public const string HtmlFile = "report.html";

    public static StrategySummary Summarize(StrategyRun run, RouterResult? router, int seed, int resamples)
    {
        var (r, _) = run.Scores.Matrix();
        int t = r.GetLength(0);
        return new StrategySummary(run.Strategy.Name, run.Strategy.Description, run.Strategy.Isolation,
            Enumerable.Range(0, t).Select(i => Enumerable.Range(0, t).Select(j => Math.Round(r[i, j], 6)).ToArray()).ToArray(),
            Round(run.Scores.Metrics()), run.Scores.Intervals(seed, resamples),
            run.Steps.Select(s => OldSuites(s, run.Scores.Tasks)).ToList(), router);
    }

    public static SortedDictionary<string, SortedDictionary<string, double>> OldSuites(StepScores step, IReadOnlyList<string> tasks) =>
        new(step.Suites.Where(s => !tasks.Contains(s.Key)).ToDictionary(s => s.Key, s => s.Value.Metrics), StringComparer.Ordinal);

    private static ContinualMetrics Round(ContinualMetrics m) => new(Math.Round(m.Acc, 6), Math.Round(m.Bwt, 6), Math.Round(m.Fwt, 6), Math.Round(m.Forgetting, 6));

    public static void WriteAll(ContinualSummary summary, string folder)
    {
        Directory.CreateDirectory(folder);
        OutputJson.Write(Path.Combine(folder, SummaryFile), summary);
        AtomicFile.WriteAllText(Path.Combine(folder, MarkdownFile), Markdown(summary));
        AtomicFile.WriteAllText(Path.Combine(folder, HtmlFile), Html(summary));
    }

    /// <summary>Strategy | ACC | BWT | FWT | forgetting (each with its interval) | router.</summary>
    public static ReportTable Comparison(ContinualSummary summary) => new(
        ["strategy", "ACC", "BWT", "FWT", "forgetting", "router accuracy"],
        summary.Strategies.Select(s => (IReadOnlyList<ReportCell>)
        [
            new ReportCell(s.Name, CellStyle.Code),
            WithInterval(s.Metrics.Acc, s.Intervals.Acc), WithInterval(s.Metrics.Bwt, s.Intervals.Bwt),
            WithInterval(s.Metrics.Fwt, s.Intervals.Fwt), WithInterval(s.Metrics.Forgetting, s.Intervals.Forgetting),
            s.Router is { } router ? F(router.Accuracy) : "",
        ]).ToList());

    /// <summary>Gate | verdict | what it found.</summary>
    public static ReportTable GateTable(ContinualSummary summary) => new(
        ["gate", "verdict", "finding"],
        summary.Gates.Select(g => (IReadOnlyList<ReportCell>)[g.Name, g.Passed ? "pass" : "FAIL", g.Message]).ToList());

    /// <summary>R with one row per step and one column per task, then the untrained model's row.</summary>
    public static ReportTable Matrix(ContinualSummary summary, StrategySummary s) => new(
        ["after step", .. summary.Tasks],
        summary.Tasks.Select((task, i) => (IReadOnlyList<ReportCell>)[$"{i + 1}. {task}", .. s.R[i].Select(v => (ReportCell)F(v))])
            .Append([new ReportCell("untrained"), .. summary.Base.Select(v => (ReportCell)F(v))]).ToList());

    /// <summary>The old-knowledge suites after every step (one column per suite's headline metric).</summary>
    public static ReportTable OldKnowledge(ContinualSummary summary, StrategySummary s)
    {
        var columns = summary.BaseOldSuites.SelectMany(suite => Headline(suite.Value).Select(m => (Suite: suite.Key, Metric: m))).ToList();
        return new ReportTable(["after step", .. columns.Select(c => $"{c.Suite} {c.Metric}")],
            s.OldSuites.Select((step, i) => (IReadOnlyList<ReportCell>)[$"{i + 1}. {summary.Tasks[i]}",
                    .. columns.Select(c => (ReportCell)(step.TryGetValue(c.Suite, out var m) && m.TryGetValue(c.Metric, out var v) ? F(v) : ""))])
                .Prepend([new ReportCell("untrained"), .. columns.Select(c => (ReportCell)F(summary.BaseOldSuites[c.Suite][c.Metric]))]).ToList());
    }

    /// <summary>The metrics worth a column: bits per byte for text, acc_norm for choices, acc_choice for cloze.</summary>
    private static IEnumerable<string> Headline(SortedDictionary<string, double> metrics) =>
        new[] { "bits_per_byte", "acc_norm", "acc_choice" }.Where(metrics.ContainsKey).Take(1);

    public static string Markdown(ContinualSummary summary)
    {
        var s = new StringBuilder();
        s.Append("# Continual learning: ").Append(string.Join(" → ", summary.Tasks)).Append("\n\n");
        s.Append("R[i, j] is the task metric (").Append(string.Join(", ", summary.Metrics.Distinct())).Append(") of task j after step i. ")
         .Append("ACC is the mean of the last row; BWT the mean change of each earlier task from right after its own step to the end; ")
         .Append("FWT the mean gain of a task before it was trained over the untrained model; forgetting the mean drop from each earlier task's best. ")
         .Append("Intervals: 95% paired bootstrap over the suites' items.\n\n");
        s.Append(Comparison(summary).Markdown()).Append('\n');
        if (summary.Gates.Count > 0) s.Append("Gates:\n\n").Append(GateTable(summary).Markdown()).Append('\n');
        foreach (var strategy in summary.Strategies)
        {
            s.Append("## ").Append(strategy.Name).Append("\n\n");
            if (strategy.Description.Length > 0) s.Append(strategy.Description).Append("\n\n");
            s.Append(Matrix(summary, strategy).Markdown()).Append('\n');
            if (summary.BaseOldSuites.Count > 0) s.Append("Old knowledge after every step:\n\n").Append(OldKnowledge(summary, strategy).Markdown()).Append('\n');
            if (strategy.Router is { } router)
                s.Append("Router: ").Append(F(router.Accuracy)).Append(" of held-out inputs go to their own task's adapter (")
                 .Append(string.Join(", ", router.PerTask.Select(p => $"{p.Key} {F(p.Value)}"))).Append("); routed scores: ")
                 .Append(string.Join(", ", router.RoutedScore.Select(p => $"{p.Key} {F(p.Value)}"))).Append(".\n\n");
        }
        return s.ToString();
    }

    public static string Html(ContinualSummary summary)
    {
        var s = new StringBuilder();
        s.Append("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Continual learning</title><style>")
         .Append("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;margin:1em 0}")
         .Append("td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}code{font-size:90%}")
         .Append("</style></head><body>\n");
        s.Append("<h1>Continual learning: ").Append(WebUtility.HtmlEncode(string.Join(" → ", summary.Tasks))).Append("</h1>\n");
        s.Append(Comparison(summary).Html());
        if (summary.Gates.Count > 0) s.Append("<h2>Gates</h2>\n").Append(GateTable(summary).Html());
        s.Append("<h2>Each task after every step</h2>\n");
        for (int j = 0; j < summary.Tasks.Count; j++) s.Append(TaskLines(summary, j));
        foreach (var strategy in summary.Strategies)
        {
            s.Append("<h2>").Append(WebUtility.HtmlEncode(strategy.Name)).Append("</h2>\n");
            if (strategy.Description.Length > 0) s.Append("<p>").Append(WebUtility.HtmlEncode(strategy.Description)).Append("</p>\n");
            s.Append(Matrix(summary, strategy).Html()).Append(Heatmap(summary, strategy));
            if (summary.BaseOldSuites.Count > 0) s.Append("<p>Old knowledge after every step:</p>").Append(OldKnowledge(summary, strategy).Html());
            if (strategy.Router is { } router)
                s.Append("<p>Router accuracy ").Append(F(router.Accuracy)).Append("; routed scores ")
                 .Append(WebUtility.HtmlEncode(string.Join(", ", router.RoutedScore.Select(p => $"{p.Key} {F(p.Value)}")))).Append("</p>\n");
        }
        s.Append("</body></html>\n");
        return s.ToString();
    }

    /// <summary>R as a heatmap: rows are steps, columns tasks, darker is higher.</summary>
    private static string Heatmap(ContinualSummary summary, StrategySummary strategy)
    {
        int t = summary.Tasks.Count;
        var values = new double[t, t];
        for (int i = 0; i < t; i++) for (int j = 0; j < t; j++) values[i, j] = strategy.R[i][j];
        var plot = new Plot();
        var map = plot.Add.Heatmap(values);
        map.Colormap = new ScottPlot.Colormaps.Viridis();
        map.ManualRange = new ScottPlot.Range(0, 1);
        for (int i = 0; i < t; i++)
            for (int j = 0; j < t; j++)
            {
                var text = plot.Add.Text(F(values[i, j]), j, t - 1 - i);
                text.LabelFontColor = values[i, j] > 0.6 ? Colors.Black : Colors.White;
                text.LabelAlignment = Alignment.MiddleCenter;
            }
        plot.Add.ColorBar(map);
        var positions = Enumerable.Range(0, t).Select(i => (double)i).ToArray();
        plot.Axes.Bottom.SetTicks(positions, summary.Tasks.ToArray());
        plot.Axes.Left.SetTicks(positions, summary.Tasks.Select((task, i) => $"after {i + 1}. {task}").Reverse().ToArray());
        plot.XLabel("task scored");
        plot.Title($"{strategy.Name}: R");
        return plot.GetSvgXml(520, 420) + "\n";
    }

    /// <summary>Task j's score after every step, one line per strategy, the untrained score as step 0.</summary>
    private static string TaskLines(ContinualSummary summary, int j)
    {
        var plot = new Plot();
        var steps = Enumerable.Range(0, summary.Tasks.Count + 1).Select(i => (double)i).ToArray();
        foreach (var strategy in summary.Strategies)
        {
            var line = plot.Add.Scatter(steps, [summary.Base[j], .. strategy.R.Select(row => row[j])]);
            line.LegendText = strategy.Name;
        }
        plot.Add.VerticalLine(j + 1, 1, Colors.Gray, LinePattern.Dashed);
        plot.Axes.Bottom.SetTicks(steps, ["untrained", .. summary.Tasks.Select((task, i) => $"{i + 1}. {task}")]);
        plot.XLabel("after step");
        plot.YLabel(summary.Metrics[j]);
        plot.Title($"{summary.Tasks[j]} (trained at step {j + 1})");
        plot.ShowLegend(Edge.Right);
        return plot.GetSvgXml(760, 320) + "\n";
    }

    private static ReportCell WithInterval(double value, Interval interval) => $"{F(value)} [{F(interval.Low)}, {F(interval.High)}]";

    private static string F(double v) => double.IsFinite(v) ? v.ToString("0.000", CultureInfo.InvariantCulture) : "–";
}
