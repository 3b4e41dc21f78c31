using System.Text.Json.Nodes;
using Forgetless.Runs;

namespace Forgetless.Study;

/// <summary>Whether a cell reached the study's target within the step cap.</summary>
public enum CellStatus
{
    /// <summary>The cell reached the target (validation task loss or held-out task accuracy): it is compared.</summary>
    Reached,
    /// <summary>It trained to the step cap without reaching it: shown, never compared.</summary>
    Missed,
}

/// <summary>
/// One suite's change on a cell, oriented so that positive is forgetting (old suites) or gain (new suites), in the
/// suite's headline metric: points for a rate (×100), percent of the base value for a perplexity-like metric — the
/// same units as Evaluate's report. <see cref="Low"/>–<see cref="High"/> is the evaluate stage's 95% paired-bootstrap interval.
/// </summary>
/// <param name="Gated">A release gate judges this suite's metric (the chart's learning axis prefers such a new suite).</param>
public sealed record SuiteChange(string Suite, string Metric, string Unit, double Value, double Low, double High, bool Gated = false)
{
    /// <summary>The interval lies wholly above zero: the change is there at 95%.</summary>
    public bool Significant => Low > 0;
}

/// <summary>What a cell measured. Everything here is deterministic; timings are in <see cref="CellTimings"/>.</summary>
public sealed record CellResult(
    string Name,
    IReadOnlyList<KeyValuePair<string, string>> Settings,
    string Method,
    CellStatus Status,
    long Steps,
    long Tokens,
    string StopReason,
    double? BestValidationLoss,
    long TrainableParameters,
    IReadOnlyList<SuiteChange> Forgetting,
    IReadOnlyList<SuiteChange> Learning,
    IReadOnlyList<string> FailedGates,
    double? BestAccuracy = null);

/// <summary>
/// What a cell cost on the machine that ran it: differs from run to run, so kept out of study.json.
/// <see cref="PeakRssBytes"/> is <see cref="CellMemory"/>'s number, null when it is not known (<see cref="PeakUnknown"/> says why).
/// </summary>
public sealed record CellTimings(string Name, double WallSeconds, long? PeakRssBytes, string? PeakUnknown = null, string? Allocator = null);

/// <summary>Reads a cell's results from its run root (finetune's summary.json, evaluate's results.json, the manifests).</summary>
public static class CellResults
{
    public static (CellResult Result, CellTimings Timings) Read(StudyCell cell, string cellRoot)
    {
        var summary = ReadJson(Path.Combine(cellRoot, "finetune", "summary.json"));
        var results = ReadJson(Path.Combine(cellRoot, "evaluate", "results.json"));
        string stop = summary["stop_reason"]!.GetValue<string>();
        // A suite's headline is the metric its gate judges (the user's choice), else the first of Headline it has.
        var gated = results["gates"]!.AsArray().Where(g => g!["category"] is null)
            .GroupBy(g => g!["suite"]!.GetValue<string>()).ToDictionary(g => g.Key, g => g.First()!["metric"]!.GetValue<string>());
        var forgetting = new List<SuiteChange>();
        var learning = new List<SuiteChange>();
        foreach (var (suite, node) in results["comparison"]!.AsObject())
        {
            bool old = node!["role"]!.GetValue<string>() == "old";
            (old ? forgetting : learning).Add(Change(suite, node["metrics"]!.AsObject(), old, gated.GetValueOrDefault(suite)));
        }
        var failed = results["gates"]!.AsArray().Where(g => !g!["passed"]!.GetValue<bool>()).Select(g => g!["name"]!.GetValue<string>()).ToList();

        double wall = 0;
        foreach (var stage in new[] { "prepare", "finetune", "distill", "evaluate" })
            if (StageManifest.TryRead(Path.Combine(cellRoot, stage)) is { } manifest) wall += manifest.DurationSeconds;
        // Not the stages' own peak_rss_bytes: that is their process's, which counts every cell run before in it.
        var peak = CellMemory.Read(cellRoot);

        var result = new CellResult(
            cell.Name, cell.Settings,
            summary["method"]!.GetValue<string>(),
            stop is "target_validation_loss" or "target_accuracy" ? CellStatus.Reached : CellStatus.Missed,
            summary["steps"]!.GetValue<long>(),
            summary["tokens"]!.GetValue<long>(),
            stop,
            summary["best_validation_task_loss"]?.GetValue<double>(),
            summary["trainable_parameters"]!.GetValue<long>(),
            forgetting, learning, failed,
            summary["best_heldout_task_accuracy"]?.GetValue<double>());
        return (result, new CellTimings(cell.Name, Math.Round(wall, 1), peak.Bytes, peak.Unknown, peak.Allocator));
    }

    /// <summary>A suite's headline change from results.json's comparison block, scaled into its unit.</summary>
    private static SuiteChange Change(string suite, JsonObject metrics, bool old, string? gatedMetric)
    {
        string metric = gatedMetric is not null && metrics.ContainsKey(gatedMetric) ? gatedMetric
            : Evaluation.EvaluationCharts.Headline.FirstOrDefault(metrics.ContainsKey) ?? metrics.First().Key;
        var m = metrics[metric]!;
        bool rate = m["higher_is_better"]!.GetValue<bool>();
        double scale = rate ? 100 : 100 / Math.Abs(m["base"]!.GetValue<double>());
        string key = old ? "forgetting" : "gain";
        var ci = m[key + "_ci"]!.AsArray();
        return new SuiteChange(suite, metric, rate ? "pts" : "% of base",
            Round(m[key]!.GetValue<double>() * scale), Round(ci[0]!.GetValue<double>() * scale), Round(ci[1]!.GetValue<double>() * scale),
            Gated: metric == gatedMetric);
    }

    private static double Round(double x) => Math.Round(x, 4);

    private static JsonObject ReadJson(string path)
    {
        if (!File.Exists(path)) throw new UserInputException($"{path}: not found; the cell has not completed (run `forgetless study` again to finish it)");
        return JsonNode.Parse(File.ReadAllText(path))!.AsObject();
    }
}
