using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Xml.Linq;
using Forgetless.Runs;

namespace Forgetless.Study;

/// <summary>
/// A study's results: its cells, both Pareto frontiers and the recommendation drawn from them. Written as study.json
/// (the schema in docs/study.md; identical on rerun), timings.json (wall time and peak memory, which are not),
/// study.md, junit.xml (one case per cell) and the chart (study.png, study.svg).
/// </summary>
public sealed record StudyReport(StudyLevel Target, int StepCap, IReadOnlyList<CellResult> Cells, IReadOnlyList<CellTimings> Timings)
{
    public const string JsonFile = "study.json";
    public const string TimingsFile = "timings.json";
    public const string MarkdownFile = "study.md";
    public const string JUnitFile = "junit.xml";
    public const string PngFile = "study.png";
    public const string SvgFile = "study.svg";
    public const string Schema = "forgetless.study/1";

    public IReadOnlyList<string> LearningFrontier { get; } = Frontier.OfLearning(Cells);
    public IReadOnlyList<string> CostFrontier { get; } = Frontier.OfCost(Cells);

    /// <summary>
    /// The frontier cell to start from: fewest old suites with forgetting significant at 95%, then fewest tokens to the
    /// target, then fewest trainable parameters, then name. Null when no cell reached the target.
    /// </summary>
    public CellResult? Recommended => Cells.Where(c => LearningFrontier.Contains(c.Name))
        .OrderBy(c => c.Forgetting.Count(f => f.Significant)).ThenBy(c => c.Tokens).ThenBy(c => c.TrainableParameters)
        .ThenBy(c => c.Name, StringComparer.Ordinal).FirstOrDefault();

    public void WriteAll(string directory)
    {
        Directory.CreateDirectory(directory);
        AtomicFile.WriteAllText(Path.Combine(directory, JsonFile), Json().ToJsonString(Indented) + "\n");
        AtomicFile.WriteAllText(Path.Combine(directory, TimingsFile), TimingsJson().ToJsonString(Indented) + "\n");
        AtomicFile.WriteAllText(Path.Combine(directory, MarkdownFile), Markdown());
        AtomicFile.WriteAllText(Path.Combine(directory, JUnitFile), JUnit().ToString());
        StudyChart.Write(this, Path.Combine(directory, PngFile), Path.Combine(directory, SvgFile));
    }

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public JsonObject Json() => new()
    {
        ["schema"] = Schema,
        ["target"] = Target.Json(StepCap),
        ["cells"] = new JsonArray(Cells.Select(c => (JsonNode)CellJson(c)).ToArray()),
        ["learning_frontier"] = new JsonArray(LearningFrontier.Select(n => (JsonNode)n).ToArray()),
        ["cost_frontier"] = new JsonArray(CostFrontier.Select(n => (JsonNode)n).ToArray()),
        ["recommended"] = Recommended?.Name,
        ["recommendation"] = Recommendation(),
    };

    private JsonObject CellJson(CellResult c)
    {
        var json = CellFields(c);
        // Only where measured, so that a loss-target study's study.json keeps its bytes.
        if (c.BestAccuracy is { } accuracy) json.Insert(json.IndexOf("trainable_parameters"), "best_heldout_task_accuracy", accuracy);
        return json;
    }

    private JsonObject CellFields(CellResult c) => new()
    {
        ["name"] = c.Name,
        ["settings"] = new JsonObject(c.Settings.Select(s => KeyValuePair.Create(s.Key, (JsonNode?)s.Value))),
        ["method"] = c.Method,
        ["status"] = c.Status == CellStatus.Reached ? "reached" : "missed",
        ["steps"] = c.Steps,
        ["tokens"] = c.Tokens,
        ["stop_reason"] = c.StopReason,
        ["best_validation_task_loss"] = c.BestValidationLoss,
        ["trainable_parameters"] = c.TrainableParameters,
        ["forgetting"] = Changes(c.Forgetting),
        ["learning"] = Changes(c.Learning),
        ["gates_failed"] = new JsonArray(c.FailedGates.Select(g => (JsonNode)g).ToArray()),
        ["on_learning_frontier"] = LearningFrontier.Contains(c.Name),
        ["on_cost_frontier"] = CostFrontier.Contains(c.Name),
    };

    private static JsonObject Changes(IEnumerable<SuiteChange> changes) => new(changes.Select(s => KeyValuePair.Create(s.Suite, (JsonNode?)new JsonObject
    {
        ["metric"] = s.Metric, ["unit"] = s.Unit, ["value"] = s.Value, ["ci95"] = new JsonArray(s.Low, s.High), ["significant"] = s.Significant,
    })));

    public JsonObject TimingsJson() => new()
    {
        ["schema"] = Schema + "-timings",
        ["cells"] = new JsonArray(Timings.Select(t => (JsonNode)new JsonObject
        {
            ["name"] = t.Name, ["wall_seconds"] = t.WallSeconds, ["peak_rss_bytes"] = t.PeakRssBytes,
            ["peak_rss_unknown"] = t.PeakUnknown, ["allocator"] = t.Allocator,
        }).ToArray()),
        ["peak_rss_measured"] = CellMemory.Meaning,
    };

    /// <summary>One paragraph: who reached the target, who is on each frontier and why, and the cell to start from.</summary>
    public string Recommendation()
    {
        var reached = Cells.Where(c => c.Status == CellStatus.Reached).ToList();
        var missed = Cells.Where(c => c.Status == CellStatus.Missed).ToList();
        string cap = StepCap > 0 ? $"{StepCap} steps" : "each cell's finetune.steps";
        var text = new StringBuilder();
        text.Append(I($"{reached.Count} of {Cells.Count} cells reached {Target.Describe} within {cap}"));
        text.Append(missed.Count == 0 ? "." : $"; {string.Join(", ", missed.Select(c => c.Name))} did not and {(missed.Count == 1 ? "is" : "are")} not compared.");
        if (reached.Count == 0)
            return text.Append(" No recommendation: raise study.stepCap or set a target the methods can reach.").ToString();
        text.Append($" On the frontier of forgetting against learning (no other cell forgot less on every old suite while learning at least as much on every new one): {Names(LearningFrontier)}.");
        text.Append($" On the frontier of forgetting against cost (training tokens to the target): {Names(CostFrontier)}.");
        var best = Recommended!;
        int significant = best.Forgetting.Count(f => f.Significant);
        text.Append(I($" Start from {best.Name} ({best.Method}): on the frontier, with forgetting significant at 95% on {significant} of {best.Forgetting.Count} old suites"));
        text.Append(I($" ({string.Join("; ", best.Forgetting.Select(Describe))}), reaching the target in {best.Steps} steps ({best.Tokens} tokens) with {best.TrainableParameters} trainable parameters."));
        return text.ToString();
    }

    private static string Names(IReadOnlyList<string> names) => names.Count == 0 ? "none" : string.Join(", ", names);

    private static string Describe(SuiteChange s) => I($"{s.Suite} {s.Metric} {Z(s.Value):+0.##;-0.##;0} {s.Unit} [{Z(s.Low):0.##}, {Z(s.High):0.##}]");

    /// <summary>Rounded to what is printed, without a sign on zero (−0.001 prints as 0, not −0).</summary>
    private static double Z(double x) => Math.Round(x, 2) + 0.0;

    public string Markdown()
    {
        var md = new StringBuilder();
        md.AppendLine("# Study: forgetting at equal learning").AppendLine();
        md.AppendLine(I($"Target: {Target.Condition}{(StepCap > 0 ? $" within {StepCap} steps" : "")}. ")
                      + "Forgetting is each old suite's headline metric (positive = worse than the base model), gain each new suite's "
                      + "(positive = better), with the evaluate stage's 95% paired-bootstrap intervals; pts = points of a rate, % = percent of the base value. "
                      + "L = on the learning frontier, C = on the cost frontier. Wall time and peak memory were measured on a shared machine (timings.json); "
                      + $"peak MB is the {CellMemory.Meaning}{AllocatorNote()}.").AppendLine();
        var old = Cells.SelectMany(c => c.Forgetting.Select(f => f.Suite)).Distinct().ToList();
        var @new = Cells.SelectMany(c => c.Learning.Select(f => f.Suite)).Distinct().ToList();
        var header = new List<string> { "cell", "method", "settings", "learning reached", "steps", "tokens" };
        header.AddRange(old.Select(s => "forgetting " + s));
        header.AddRange(@new.Select(s => "gain " + s));
        header.AddRange(["trainable", "wall s", "peak MB", "frontier", "gates"]);
        md.AppendLine("| " + string.Join(" | ", header) + " |");
        md.AppendLine("|" + string.Concat(header.Select(_ => "---|")));
        foreach (var c in Cells)
        {
            var t = Timings.FirstOrDefault(x => x.Name == c.Name);
            var row = new List<string>
            {
                c.Name, c.Method, string.Join(", ", c.Settings.Select(s => $"`{s.Key}={s.Value}`")),
                c.Status == CellStatus.Reached ? I($"yes ({Target.BestOf(c)})") : I($"**no** (best {Target.BestOf(c)})"),
                c.Steps.ToString(CultureInfo.InvariantCulture), c.Tokens.ToString(CultureInfo.InvariantCulture),
            };
            row.AddRange(old.Select(s => c.Forgetting.FirstOrDefault(f => f.Suite == s) is { } f ? Cell(f) : ""));
            row.AddRange(@new.Select(s => c.Learning.FirstOrDefault(f => f.Suite == s) is { } f ? Cell(f) : ""));
            row.Add(c.TrainableParameters.ToString(CultureInfo.InvariantCulture));
            row.Add(t is null ? "" : I($"{t.WallSeconds:0.#}"));
            row.Add(t is null ? "" : t.PeakRssBytes is { } peak ? I($"{peak / 1048576.0:0}") : "n/a");
            row.Add((LearningFrontier.Contains(c.Name) ? "L" : "") + (CostFrontier.Contains(c.Name) ? "C" : ""));
            row.Add(c.FailedGates.Count == 0 ? "pass" : "failed: " + string.Join(", ", c.FailedGates));
            md.AppendLine("| " + string.Join(" | ", row) + " |");
        }
        // Why a peak is not known, once per reason rather than in every row.
        foreach (var unknown in Timings.Where(t => t.PeakRssBytes is null && t.PeakUnknown is not null).GroupBy(t => t.PeakUnknown!))
            md.AppendLine().AppendLine($"peak MB n/a for {string.Join(", ", unknown.Select(t => t.Name))}: {unknown.Key}.");
        md.AppendLine().AppendLine("## Recommendation").AppendLine().AppendLine(Recommendation()).AppendLine();
        md.AppendLine($"![forgetting against learning and cost]({PngFile})");
        return md.ToString();
    }

    /// <summary>glibc keeps freed blocks resident by default, so the peak is what the process held, not only its live tensors.</summary>
    private string AllocatorNote()
    {
        var allocators = Timings.Select(t => t.Allocator).OfType<string>().Distinct().ToList();
        if (allocators.Count == 0) return "";
        return allocators.Count == 1 && allocators[0] == "default"
            ? ", with the allocator's default settings (glibc keeps freed memory resident for reuse, so it counts what the process held, not only its live tensors)"
            : $", allocator settings: {string.Join(", ", allocators)}";
    }

    private static string Cell(SuiteChange s) => I($"{Z(s.Value):0.##} [{Z(s.Low):0.##}, {Z(s.High):0.##}] {s.Unit}");

    /// <summary>JUnit: one case per cell; a cell fails when it missed the target or one of its release gates failed.</summary>
    public XDocument JUnit()
    {
        var cases = Cells.Select(c =>
        {
            var testcase = new XElement("testcase", new XAttribute("classname", "forgetless.study"), new XAttribute("name", c.Name),
                new XAttribute("time", I($"{Timings.FirstOrDefault(t => t.Name == c.Name)?.WallSeconds ?? 0}")));
            var problems = new List<string>();
            if (c.Status == CellStatus.Missed)
                problems.Add(I($"did not reach {Target.Name} in {c.Steps} steps (best {Target.BestOf(c)})"));
            if (c.FailedGates.Count > 0) problems.Add("release gates failed: " + string.Join(", ", c.FailedGates));
            if (problems.Count > 0) testcase.Add(new XElement("failure", new XAttribute("message", string.Join("; ", problems))));
            return testcase;
        }).ToList();
        return new XDocument(new XElement("testsuites", new XElement("testsuite",
            new XAttribute("name", "study"), new XAttribute("tests", cases.Count),
            new XAttribute("failures", cases.Count(c => c.Element("failure") is not null)), new XAttribute("errors", 0), cases)));
    }

    private static string I(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
