using System.Globalization;
using Forgetless.Evaluation;

namespace Forgetless.Continual;

/// <summary>
/// A gate on one strategy's sequence (<c>continual.gates</c>): a bound on ACC, BWT, FWT, forgetting, or one cell of R
/// (<c>metric: "r"</c> with <c>afterTask</c> — the row — and <c>task</c> — the column). Exactly one of <c>min</c> and
/// <c>max</c>. With the <c>nonInferiority</c> decision (the default, as for release gates) the one-sided bootstrap bound
/// on the worse side must meet the threshold; with <c>point</c> the point estimate alone.
/// </summary>
public sealed class ContinualGateOptions
{
    public static readonly string[] Metrics = ["acc", "bwt", "fwt", "forgetting", "r"];

    /// <summary>Shown in reports; generated from the rest when empty.</summary>
    public string Name { get; set; } = "";
    public string Strategy { get; set; } = "";
    public string Metric { get; set; } = "";
    /// <summary>For <c>r</c>: the task whose training step gives the row.</summary>
    public string AfterTask { get; set; } = "";
    /// <summary>For <c>r</c>: the task scored (the column).</summary>
    public string Task { get; set; } = "";
    public double? Min { get; set; }
    public double? Max { get; set; }
    public GateDecision Decision { get; set; } = GateDecision.NonInferiority;

    public double Threshold => Min ?? Max ?? double.NaN;

    public string DisplayName => Name.Length > 0 ? Name
        : string.Create(CultureInfo.InvariantCulture,
            $"{Strategy}.{Metric}{(Metric == "r" ? $"[after {AfterTask}, {Task}]" : "")} {(Min is not null ? "min" : "max")} {Threshold:0.####}");

    public IEnumerable<string> Validate(IReadOnlyCollection<string> tasks, IReadOnlyCollection<string> strategies)
    {
        if (!strategies.Contains(Strategy)) yield return $"strategy = '{Strategy}': not a configured strategy ({string.Join(", ", strategies)})";
        if (!Metrics.Contains(Metric)) yield return $"metric = '{Metric}': expected one of {string.Join(", ", Metrics)}";
        if (Metric == "r")
        {
            if (!tasks.Contains(AfterTask)) yield return $"afterTask = '{AfterTask}': a gate on a cell of R names the row's task ({string.Join(", ", tasks)})";
            if (!tasks.Contains(Task)) yield return $"task = '{Task}': a gate on a cell of R names the column's task ({string.Join(", ", tasks)})";
        }
        else if (AfterTask.Length > 0 || Task.Length > 0) yield return $"afterTask/task: only a gate on metric 'r' (a cell of R) names tasks";
        if ((Min is null) == (Max is null)) yield return "min/max: set exactly one of min and max";
        if (Min is { } lo && !double.IsFinite(lo) || Max is { } hi && !double.IsFinite(hi)) yield return "min/max: thresholds must be finite numbers";
        if (Decision == GateDecision.Interval) yield return "decision = interval: continual gates are judged by nonInferiority or point";
    }
}

/// <summary>
/// What a continual gate found: the value, the number it was judged by (the bound, or the value for a point decision)
/// against <see cref="Threshold"/> as a <see cref="Kind"/> ("min" or "max") bound, and the verdict.
/// </summary>
public sealed record ContinualGateVerdict(string Name, string Strategy, string Kind, double Threshold, double Value, double Judged, Interval Interval,
    bool Passed, string Message)
{
    /// <summary>Whether <see cref="Passed"/> follows from <see cref="Judged"/> and the threshold (a recorded verdict is rechecked with it).</summary>
    public bool Consistent => Passed == Holds(Kind, Judged, Threshold);

    public static bool Holds(string kind, double judged, double threshold) =>
        !double.IsNaN(judged) && (kind == "min" ? judged >= threshold : judged <= threshold);
}

public static class ContinualGates
{
    public static ContinualGateVerdict Judge(ContinualGateOptions gate, ContinualScores scores, int seed, int resamples, double confidence = 0.95)
    {
        Func<double[,], double[], double> statistic = gate.Metric switch
        {
            "r" => Cell(scores.Tasks, gate.AfterTask, gate.Task),
            _ => (r, b) => Pick(ContinualMetrics.Of(r, b), gate.Metric),
        };
        var (full, baseline) = scores.Matrix();
        double value = statistic(full, baseline);
        var draws = scores.Resampled(statistic, seed, resamples);
        bool lower = gate.Min is not null;
        double bound = draws.Quantile(lower ? 1 - confidence : confidence);
        // Rounded as recorded, so a verdict read back from summary.json or a package rechecks to the same answer.
        double judged = Math.Round(gate.Decision == GateDecision.Point ? value : bound, 6);
        string kind = lower ? "min" : "max";
        bool passed = ContinualGateVerdict.Holds(kind, judged, gate.Threshold);
        var interval = draws.Interval(confidence);
        string F(double x) => (x + 0.0).ToString("0.####", CultureInfo.InvariantCulture);
        string how = gate.Decision == GateDecision.Point ? "point estimate"
            : string.Create(CultureInfo.InvariantCulture, $"one-sided {confidence:0%} bound {F(bound)}");
        string message = $"{gate.Strategy}: {gate.Metric}{(gate.Metric == "r" ? $"[after {gate.AfterTask}, {gate.Task}]" : "")} = {F(value)} "
                         + $"(95% CI {F(interval.Low)} .. {F(interval.High)}), {how} must be {(lower ? "at least" : "at most")} {F(gate.Threshold)} — {(passed ? "pass" : "FAIL")}";
        return new ContinualGateVerdict(gate.DisplayName, gate.Strategy, kind, gate.Threshold, Math.Round(value, 6), judged, interval, passed, message);
    }

    private static Func<double[,], double[], double> Cell(IReadOnlyList<string> tasks, string row, string column)
    {
        int i = IndexOf(tasks, row), j = IndexOf(tasks, column);
        return (r, _) => r[i, j];
    }

    private static int IndexOf(IReadOnlyList<string> tasks, string name)
    {
        for (int i = 0; i < tasks.Count; i++)
            if (tasks[i] == name) return i;
        throw new UserInputException($"continual gate: no task '{name}'; tasks: {string.Join(", ", tasks)}");
    }

    private static double Pick(ContinualMetrics m, string metric) => metric switch
    {
        "acc" => m.Acc,
        "bwt" => m.Bwt,
        "fwt" => m.Fwt,
        "forgetting" => m.Forgetting,
        _ => throw new UserInputException($"continual gate: unknown metric '{metric}'"),
    };
}
