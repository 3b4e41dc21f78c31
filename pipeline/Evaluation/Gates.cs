using System.Globalization;

namespace Forgetless.Evaluation;

/// <summary>
/// How a gate reads the numbers.
/// <c>NonInferiority</c> (the default): the candidate must show it is within the threshold — a one-sided test at the
/// stated confidence: the gate passes only when the bootstrap bound on the worse side (the <c>confidence</c> quantile
/// of the drop, or the 1 − <c>confidence</c> quantile of a gain) is within the threshold.
/// <c>Interval</c>: the harm must be shown — with <c>anyOfInterval</c> false a gate fails only when the whole two-sided
/// interval is past the threshold, with true when any of it is (the rule before non-inferiority became the default).
/// <c>Point</c>: the point estimate alone.
/// </summary>
public enum GateDecision { NonInferiority, Interval, Point }

/// <summary>
/// One release gate on one metric of one suite (optionally one category of its items). Exactly one
/// threshold is set:
/// <c>maxDrop</c> — the candidate may be at most this much worse than the base;
/// <c>minGain</c> — the candidate must be at least this much better than the base;
/// <c>min</c> / <c>max</c> — bounds on the candidate's own value.
/// "Worse" and "better" follow the metric's direction (perplexity: up is worse). With
/// <c>relative</c>, drops and gains are shares of the base value (0.1 = 10%).
/// </summary>
public sealed class GateOptions
{
    /// <summary>Shown in reports and as the JUnit test-case name; generated from the rest when empty.</summary>
    public string Name { get; set; } = "";
    public string Suite { get; set; } = "";
    public string Metric { get; set; } = "";
    /// <summary>Only items of this category (e.g. "seen"); empty: all items.</summary>
    public string Category { get; set; } = "";
    public double? MaxDrop { get; set; }
    public double? MinGain { get; set; }
    public double? Min { get; set; }
    public double? Max { get; set; }
    public bool Relative { get; set; }
    /// <summary>Overrides <c>evaluate.decision</c> for this gate.</summary>
    public GateDecision? Decision { get; set; }
    /// <summary>Overrides <c>evaluate.anyOfInterval</c> for this gate.</summary>
    public bool? AnyOfInterval { get; set; }

    public string Kind => MaxDrop is not null ? "maxDrop" : MinGain is not null ? "minGain" : Min is not null ? "min" : "max";

    public double Threshold => MaxDrop ?? MinGain ?? Min ?? Max ?? double.NaN;

    public string DisplayName => Name.Length > 0 ? Name
        : string.Create(CultureInfo.InvariantCulture,
            $"{Suite}.{Metric}{(Category.Length > 0 ? $"[{Category}]" : "")} {Kind} {Threshold:0.####}{(Relative ? " (relative)" : "")}");

    public IEnumerable<string> Validate(string key)
    {
        if (string.IsNullOrWhiteSpace(Suite)) yield return $"{key}.suite: every gate names a suite";
        if (string.IsNullOrWhiteSpace(Metric)) yield return $"{key}.metric: every gate names a metric";
        int set = new[] { MaxDrop, MinGain, Min, Max }.Count(v => v is not null);
        if (set != 1) yield return $"{key}: set exactly one of maxDrop, minGain, min, max (found {set})";
        if (Relative && (Min is not null || Max is not null)) yield return $"{key}.relative: only maxDrop and minGain can be relative";
        if (new[] { MaxDrop, MinGain, Min, Max }.Any(v => v is { } x && !double.IsFinite(x))) yield return $"{key}: thresholds must be finite numbers";
    }
}

/// <summary>
/// What a gate found. <see cref="Observed"/> is in the gate's own terms (a drop, a gain, or the value); <see cref="Interval"/>
/// is its two-sided bootstrap interval, <see cref="Bound"/> the one-sided bound a non-inferiority decision judged.
/// </summary>
public sealed record GateVerdict(GateOptions Gate, GateDecision Decision, bool AnyOfInterval, double Base, double Candidate,
    double Observed, Interval? Interval, bool Passed, string Message, double? Bound = null)
{
    public string Name => Gate.DisplayName;
}

/// <summary>Judges gates against base and candidate results of the same items.</summary>
public static class ReleaseGates
{
    public static IReadOnlyList<GateVerdict> Judge(IReadOnlyList<GateOptions> gates, IReadOnlyDictionary<string, (SuiteResult Base, SuiteResult Candidate)> suites,
        GateDecision decision, bool anyOfInterval, int seed, double confidence = 0.95, int resamples = Bootstrap.DefaultResamples) =>
        gates.Select(g => Judge(g, suites, decision, anyOfInterval, seed, confidence, resamples)).ToList();

    public static GateVerdict Judge(GateOptions gate, IReadOnlyDictionary<string, (SuiteResult Base, SuiteResult Candidate)> suites,
        GateDecision defaultDecision, bool defaultAnyOfInterval, int seed, double confidence = 0.95, int resamples = Bootstrap.DefaultResamples)
    {
        var decision = gate.Decision ?? defaultDecision;
        bool any = gate.AnyOfInterval ?? defaultAnyOfInterval;
        if (!suites.TryGetValue(gate.Suite, out var pair))
            throw new UserInputException($"gate '{gate.DisplayName}': no suite named '{gate.Suite}'; suites: {string.Join(", ", suites.Keys)}");
        MetricDefinition metric;
        try
        {
            metric = pair.Base.Metric(gate.Metric);
        }
        catch (KeyNotFoundException e)
        {
            throw new UserInputException($"gate '{gate.DisplayName}': {e.Message}");
        }
        IReadOnlyList<int> idx = pair.Base.All;
        if (gate.Category.Length > 0 && !pair.Base.Categories().TryGetValue(gate.Category, out idx!))
            throw new UserInputException($"gate '{gate.DisplayName}': suite '{gate.Suite}' has no items of category '{gate.Category}'; categories: "
                                         + string.Join(", ", pair.Base.Categories().Keys));

        double b = metric.Aggregate(pair.Base.Items, idx), c = metric.Aggregate(pair.Candidate.Items, idx);
        Func<double, double, double> statistic = gate.Kind switch
        {
            "maxDrop" => (x, y) => Scale(Worse(metric, x, y), x, gate.Relative),
            "minGain" => (x, y) => Scale(-Worse(metric, x, y), x, gate.Relative),
            _ => (_, y) => y,
        };
        double observed = statistic(b, c);
        var draws = decision == GateDecision.Point ? null
            : Bootstrap.PairedResamples(metric, pair.Base.Items, pair.Candidate.Items, statistic, seed, resamples, idx);
        Interval? interval = draws?.Interval(confidence);

        // "Upper" gates fail above the threshold (maxDrop, max); "lower" gates fail below it (minGain, min).
        bool upper = gate.Kind is "maxDrop" or "max";
        double? bound = decision == GateDecision.NonInferiority ? draws!.Quantile(upper ? confidence : 1 - confidence) : null;
        double t = gate.Threshold;
        double judged = decision switch
        {
            GateDecision.Point => observed,
            GateDecision.NonInferiority => bound!.Value,
            _ => upper ? (any ? interval!.High : interval!.Low) : (any ? interval!.Low : interval!.High),
        };
        bool passed = !double.IsNaN(judged) && (upper ? judged <= t : judged >= t);
        return new GateVerdict(gate, decision, any, b, c, observed, interval, passed,
            Describe(gate, metric, observed, decision, interval, bound, passed, any, confidence), bound);
    }

    private static double Worse(MetricDefinition metric, double b, double c) => metric.HigherIsBetter ? b - c : c - b;

    private static double Scale(double x, double b, bool relative) => relative ? x / Math.Abs(b) : x;

    private static string Describe(GateOptions gate, MetricDefinition metric, double observed, GateDecision decision, Interval? interval,
        double? bound, bool passed, bool any, double confidence)
    {
        string F(double x) => gate.Relative ? (x + 0.0).ToString("0.##%", CultureInfo.InvariantCulture) : (x + 0.0).ToString("0.####", CultureInfo.InvariantCulture);
        string what = gate.Kind switch
        {
            "maxDrop" => $"{(metric.HigherIsBetter ? "drop" : "rise")} of {metric.Name} (worse by) {F(observed)}, allowed at most {F(gate.Threshold)}",
            "minGain" => $"gain in {metric.Name} {F(observed)}, required at least {F(gate.Threshold)}",
            "min" => $"{metric.Name} = {F(observed)}, required at least {F(gate.Threshold)}",
            _ => $"{metric.Name} = {F(observed)}, allowed at most {F(gate.Threshold)}",
        };
        string scope = gate.Category.Length > 0 ? $" on '{gate.Category}' items" : "";
        string ci = interval is null ? "" : decision == GateDecision.NonInferiority
            ? string.Create(CultureInfo.InvariantCulture,
                $" ({confidence:0%} CI {F(interval.Low)} .. {F(interval.High)}; non-inferiority: the one-sided {confidence:0%} bound {F(bound!.Value)} must {(gate.Kind is "maxDrop" or "max" ? "be within" : "reach")} the threshold)")
            : string.Create(CultureInfo.InvariantCulture,
                $" ({confidence:0%} CI {F(interval.Low)} .. {F(interval.High)}; fails when {(any ? "any part" : "the whole")} of it is past the threshold)");
        return $"{gate.Suite}{scope}: {what}{ci} — {(passed ? "pass" : "FAIL")}";
    }
}
