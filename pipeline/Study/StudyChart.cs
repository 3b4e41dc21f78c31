using System.Globalization;
using System.Text;
using ScottPlot;
using SkiaSharp;

namespace Forgetless.Study;

/// <summary>
/// The study's chart: one row of panels per old suite — its forgetting (y, with the 95% interval) against learning
/// (x: the gain on the gated new suite, else the first new one, with its interval) and against cost (x: training tokens to the target). Each panel
/// has one unit per axis; frontier cells are drawn in colour with their names, the other cells that reached the target
/// in grey; cells that missed it are not drawn (the title names them). PNG and SVG of the same panels.
/// </summary>
public static class StudyChart
{
    private const int PanelWidth = 560, PanelHeight = 380;

    public static void Write(StudyReport report, string png, string svg)
    {
        var panels = Panels(report);
        int columns = 2, rows = (panels.Count + columns - 1) / columns;
        var svgText = new StringBuilder();
        svgText.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{columns * PanelWidth}\" height=\"{rows * PanelHeight}\">");
        using var surface = SKSurface.Create(new SKImageInfo(columns * PanelWidth, rows * PanelHeight));
        surface.Canvas.Clear(SKColors.White);
        for (int i = 0; i < panels.Count; i++)
        {
            int x = i % columns * PanelWidth, y = i / columns * PanelHeight;
            string inner = panels[i].GetSvgXml(PanelWidth, PanelHeight);
            svgText.Append(CultureInfo.InvariantCulture, $"<g transform=\"translate({x},{y})\">{StripXmlDeclaration(inner)}</g>");
            using var image = SKImage.FromEncodedData(panels[i].GetImageBytes(PanelWidth, PanelHeight, ImageFormat.Png));
            surface.Canvas.DrawImage(image, x, y);
        }
        svgText.Append("</svg>");
        Runs.AtomicFile.WriteAllText(svg, svgText.ToString());
        using var snapshot = surface.Snapshot();
        using var data = snapshot.Encode(SKEncodedImageFormat.Png, 100);
        Runs.AtomicFile.WriteAllBytes(png, data.ToArray());
    }

    /// <summary>The panels, two per old suite (against learning, against cost).</summary>
    public static IReadOnlyList<Plot> Panels(StudyReport report)
    {
        var reached = report.Cells.Where(c => c.Status == CellStatus.Reached).ToList();
        var missed = report.Cells.Where(c => c.Status == CellStatus.Missed).Select(c => c.Name).ToList();
        string missedNote = missed.Count == 0 ? "" : $" — missed the target: {string.Join(", ", missed)}";
        var oldSuites = report.Cells.SelectMany(c => c.Forgetting.Select(f => f.Suite)).Distinct().ToList();
        var panels = new List<Plot>();
        foreach (var suite in oldSuites)
        {
            var unit = report.Cells.SelectMany(c => c.Forgetting).First(f => f.Suite == suite);
            string yLabel = $"forgetting, {unit.Unit} (up = worse)";
            // Learning is read on the new suite a gate judges (what the user declared as learned), else the first new suite.
            var learning = report.Cells.SelectMany(c => c.Learning).OrderBy(l => l.Gated ? 0 : 1).FirstOrDefault();
            panels.Add(Panel(reached, report.LearningFrontier, suite, yLabel,
                learning is null ? null : c => c.Learning.First(l => l.Suite == learning.Suite),
                c => 0, learning is null ? "(no new suite)" : $"gain on {learning.Suite} {learning.Metric}, {learning.Unit} (right = learned more)",
                $"{suite} {unit.Metric} vs learning{missedNote}"));
            panels.Add(Panel(reached, report.CostFrontier, suite, yLabel, null, c => c.Tokens,
                "training tokens to reach the target", $"{suite} {unit.Metric} vs cost"));
        }
        return panels;
    }

    private static Plot Panel(IReadOnlyList<CellResult> cells, IReadOnlyList<string> frontier, string suite, string yLabel,
        Func<CellResult, SuiteChange>? xChange, Func<CellResult, double> xValue, string xLabel, string title)
    {
        var plot = new Plot();
        foreach (var group in new[] { true, false })
        {
            var members = cells.Where(c => frontier.Contains(c.Name) == group).ToList();
            if (members.Count == 0) continue;
            double[] xs = members.Select(c => xChange is null ? xValue(c) : xChange(c).Value).ToArray();
            var ys = members.Select(c => c.Forgetting.First(f => f.Suite == suite)).ToList();
            double[] yv = ys.Select(f => f.Value).ToArray();
            var color = group ? Colors.RoyalBlue : Colors.Gray;
            var errors = new ScottPlot.Plottables.ErrorBar(xs, yv,
                xChange is null ? null : members.Select(c => xChange(c).High - xChange(c).Value).ToArray(),
                xChange is null ? null : members.Select(c => xChange(c).Value - xChange(c).Low).ToArray(),
                ys.Select(f => f.High - f.Value).ToArray(), ys.Select(f => f.Value - f.Low).ToArray()) { Color = color };
            plot.Add.Plottable(errors);
            var markers = plot.Add.ScatterPoints(xs, yv, color);
            markers.MarkerSize = 8;
            markers.LegendText = group ? "on the frontier" : "dominated";
            for (int i = 0; i < members.Count; i++)
            {
                var label = plot.Add.Text(members[i].Name, xs[i], yv[i]);
                label.LabelFontSize = 11;
                label.LabelFontColor = color;
                label.LabelOffsetX = 6;
                label.LabelOffsetY = -6;
            }
        }
        plot.Add.HorizontalLine(0, 1, Colors.LightGray);
        plot.Title(title, 13);
        plot.XLabel(xLabel, 12);
        plot.YLabel(yLabel, 12);
        plot.ShowLegend(Edge.Bottom);
        return plot;
    }

    private static string StripXmlDeclaration(string svg) => svg.StartsWith("<?xml", StringComparison.Ordinal) ? svg[(svg.IndexOf("?>", StringComparison.Ordinal) + 2)..] : svg;
}
