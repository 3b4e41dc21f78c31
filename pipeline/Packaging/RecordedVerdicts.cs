using System.Globalization;
using System.Text.Json.Nodes;

namespace Forgetless.Packaging;

/// <summary>
/// Rechecks recorded release-gate verdicts (results.json's <c>gates</c>, kept in a package's manifest) against the
/// numbers recorded beside them, independently of the code that judged them: each verdict must follow from its
/// observation (or interval) and threshold, each observation from the base and candidate values, and the overall
/// <c>passed</c> from the gates. A verdict edited to "pass", or an observation edited past its threshold, is a
/// contradiction. Numbers are recorded to 6 decimals, so a value within 1e-6 of its threshold is taken as recorded.
/// </summary>
public static class RecordedVerdicts
{
    private const double Rounding = 1e-6;

    /// <summary>Every problem found, each naming its gate; empty when the verdicts hold and all passed.</summary>
    public static IReadOnlyList<string> Check(JsonNode? evaluation, string source)
    {
        if (evaluation?["gates"] is not JsonArray gates || !TryBool(evaluation["passed"], out bool passed))
            return [$"{source}: no recorded evaluation verdicts"];
        var problems = new List<string>();
        bool all = true;
        foreach (var gate in gates)
        {
            string name = gate?["name"]?.ToString() ?? "(unnamed)";
            if (!TryBool(gate?["passed"], out bool recorded))
            {
                problems.Add($"gate '{name}' has no recorded verdict");
                all = false;
                continue;
            }
            all &= recorded;
            problems.AddRange(Contradictions(gate!, name, recorded, evaluation["higher_is_better"]));
            if (!recorded) problems.Add($"gate '{name}' is recorded as failed: {gate!["message"]}");
        }
        if (passed != all) problems.Add($"{source}: passed = {Lower(passed)} contradicts the gate verdicts");
        else if (!passed) problems.Add("the evaluation did not pass its release gates");
        return problems;
    }

    private static IEnumerable<string> Contradictions(JsonNode gate, string name, bool recorded, JsonNode? higherIsBetter)
    {
        string kind = gate["kind"]?.ToString() ?? "";
        if (kind is not ("maxDrop" or "minGain" or "min" or "max"))
        {
            yield return $"gate '{name}': kind '{kind}' is not one this verifier can check; its verdict is not trusted";
            yield break;
        }
        if (!TryNumber(gate["threshold"], out double threshold))
        {
            yield return $"gate '{name}': no threshold recorded";
            yield break;
        }
        bool upper = kind is "maxDrop" or "max"; // fails above the threshold; minGain and min fail below it
        double? observed = TryNumber(gate["observed"], out double o) ? o : null; // null: not a finite number, which fails
        string decision = gate["decision"]?.ToString() ?? "";
        double? judged;
        string what;
        if (decision == "point")
        {
            (judged, what) = (observed, $"observed {F(observed)}");
        }
        else if (decision == "interval" && gate["interval"] is JsonArray { Count: 2 } interval
                 && TryNumber(interval[0], out double low) && TryNumber(interval[1], out double high))
        {
            TryBool(gate["any_of_interval"], out bool any);
            // An upper gate fails when the whole interval is past the threshold (its low end), or any part (its high end) when
            // anyOfInterval; a lower gate the reverse.
            bool useHigh = upper == any;
            (judged, what) = (useHigh ? high : low, $"interval {(useHigh ? "high" : "low")} end {F(useHigh ? high : low)}");
        }
        else if (decision == "non_inferiority" && TryNumber(gate["bound"], out double bound))
        {
            // The one-sided bound on the worse side must be within the threshold. A one-sided 95% bound lies inside the
            // two-sided 95% interval of the same draws, so a bound outside it was not the one the interval came with.
            (judged, what) = (bound, $"one-sided bound {F(bound)}");
            if (gate["interval"] is JsonArray { Count: 2 } ci && TryNumber(ci[0], out double lo) && TryNumber(ci[1], out double hi)
                && (bound < lo - Rounding || bound > hi + Rounding))
                yield return $"gate '{name}': its one-sided bound {F(bound)} lies outside its interval [{F(lo)}, {F(hi)}]";
        }
        else
        {
            yield return $"gate '{name}': decision '{decision}' without the numbers it needs (an interval of two numbers, a one-sided bound, or 'point')";
            yield break;
        }

        bool? follows = judged is not { } j ? false
            : Math.Abs(j - threshold) <= Rounding ? null
            : upper ? j <= threshold : j >= threshold;
        if (follows is { } f && f != recorded)
            yield return $"gate '{name}' is recorded as {(recorded ? "passed" : "failed")}, but its {what} is {(upper ? (f ? "within" : "above") : (f ? "at or above" : "below"))} " +
                         $"its {kind} threshold {F(threshold)}";

        if (observed is { } obs && Expected(gate, kind, higherIsBetter) is { } expected && Math.Abs(expected.Value - obs) > expected.Tolerance)
            yield return $"gate '{name}': observed {F(obs)} does not follow from its base {F(Num(gate["base"]))} and candidate {F(Num(gate["candidate"]))} " +
                         $"(they give {F(expected.Value)})";
    }

    /// <summary>The observation the gate's base and candidate values give, when they and the metric's direction are recorded.</summary>
    private static (double Value, double Tolerance)? Expected(JsonNode gate, string kind, JsonNode? higherIsBetter)
    {
        if (!TryNumber(gate["candidate"], out double c)) return null;
        if (kind is "min" or "max") return (c, 2 * Rounding);
        if (!TryNumber(gate["base"], out double b)) return null;
        if (!TryBool(higherIsBetter?[gate["suite"]?.ToString() ?? ""]?[gate["metric"]?.ToString() ?? ""], out bool hib)) return null;
        double worse = hib ? b - c : c - b;
        double drop = kind == "maxDrop" ? worse : -worse;
        TryBool(gate["relative"], out bool relative);
        if (!relative) return (drop, 3 * Rounding);
        if (Math.Abs(b) < Rounding) return null; // a relative change of a zero base is not recomputable from rounded values
        return (drop / Math.Abs(b), 3 * Rounding * (1 + Math.Abs(drop / b)) / Math.Min(1, Math.Abs(b)));
    }

    private static double? Num(JsonNode? node) => TryNumber(node, out double v) ? v : null;

    private static bool TryNumber(JsonNode? node, out double value)
    {
        value = double.NaN;
        return node is JsonValue v && v.TryGetValue(out value) && double.IsFinite(value);
    }

    private static bool TryBool(JsonNode? node, out bool value)
    {
        value = false;
        return node is JsonValue v && v.TryGetValue(out value);
    }

    private static string F(double? x) => x is { } v ? v.ToString("0.######", CultureInfo.InvariantCulture) : "none";

    private static string Lower(bool b) => b ? "true" : "false";
}
