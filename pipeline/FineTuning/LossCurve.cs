namespace Forgetless.FineTuning;

/// <summary>loss_curve.png: training loss, validation task loss and held-out general loss against steps.</summary>
public static class LossCurve
{
    public const string FileName = "loss_curve.png";

    public static void Draw(string metricsPath, string pngPath, string title)
    {
        var entries = MetricsLog.Read(metricsPath);
        var plot = new ScottPlot.Plot();
        void Series(string key, string label)
        {
            var points = entries.Where(e => e.ContainsKey(key) && e.ContainsKey("step") && double.IsFinite(e[key])).ToList();
            if (points.Count == 0) return;
            var scatter = plot.Add.Scatter(points.Select(p => p["step"]).ToArray(), points.Select(p => p[key]).ToArray());
            scatter.LegendText = label;
        }
        Series("loss", "train loss");
        Series("val_task_loss", "validation task loss");
        Series("heldout_loss", "held-out general loss (forgetting)");
        plot.Title(title);
        plot.XLabel("step");
        plot.YLabel("loss (nats/token)");
        plot.ShowLegend(ScottPlot.Edge.Right); // outside the data: the last points stay visible
        var temp = pngPath + ".tmp.png";
        plot.SavePng(temp, 900, 500);
        File.Move(temp, pngPath, overwrite: true);
    }
}
