using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Xml.Linq;
using Forgetless.Runs;

namespace Forgetless.Evaluation;

/// <summary>
/// Writes what an evaluation found: <c>results.json</c> (lm-evaluation-harness shape plus the
/// comparison), <c>junit.xml</c> (one test case per gate), <c>report.md</c> and a self-contained
/// <c>report.html</c> with inline SVG charts. Every file is written atomically.
/// </summary>
public static class EvaluationReports
{
    public const string ResultsFile = "results.json";
    public const string JUnitFile = "junit.xml";
    public const string MarkdownFile = "report.md";
    public const string HtmlFile = "report.html";

    public static void WriteAll(EvaluationResult result, string directory, string toolVersion)
    {
        Directory.CreateDirectory(directory);
        AtomicFile.WriteAllText(Path.Combine(directory, ResultsFile), ResultsJson(result, toolVersion).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        AtomicFile.WriteAllText(Path.Combine(directory, JUnitFile), JUnit(result).ToString());
        AtomicFile.WriteAllText(Path.Combine(directory, MarkdownFile), Markdown(result));
        AtomicFile.WriteAllText(Path.Combine(directory, HtmlFile), Html(result));
    }

    private static JsonNode? Num(double x) => double.IsFinite(x) ? JsonValue.Create(Math.Round(x, 6)) : null;

    private static JsonArray Pair(Interval? i) => i is null ? [] : [Num(i.Low), Num(i.High)];

    /// <summary>lm-eval's per-task block: <c>"metric,none"</c> and <c>"metric_stderr,none"</c>.</summary>
    private static JsonObject TaskBlock(SuiteResult result, int seed, int resamples)
    {
        var block = new JsonObject { ["alias"] = result.Suite };
        foreach (var m in result.Metrics)
        {
            block[$"{m.Name},none"] = Num(m.Aggregate(result.Items, result.All));
            block[$"{m.Name}_stderr,none"] = Num(m.StandardError(result.Items, result.All, seed, resamples));
        }
        return block;
    }

    private static JsonObject MetricBlock(MetricComparison m, SuiteRole role)
    {
        var o = new JsonObject
        {
            ["base"] = Num(m.Base),
            ["candidate"] = Num(m.Candidate),
            ["difference"] = Num(m.Difference),
            ["difference_ci"] = Pair(m.DifferenceInterval),
            ["relative_difference"] = Num(m.Difference / Math.Abs(m.Base)),
            ["higher_is_better"] = m.HigherIsBetter,
            ["base_stderr"] = Num(m.BaseStderr),
            ["candidate_stderr"] = Num(m.CandidateStderr),
        };
        // Forgetting (old suites) and gain (new suites) are oriented by the metric's direction:
        // forgetting > 0 means the candidate got worse, gain > 0 that it got better.
        var worse = m.WorseningInterval;
        if (role == SuiteRole.Old)
        {
            o["forgetting"] = Num(m.Worsening);
            o["forgetting_ci"] = Pair(worse);
        }
        else
        {
            o["gain"] = Num(-m.Worsening);
            o["gain_ci"] = Pair(new Interval(-worse.High, -worse.Low));
        }
        return o;
    }

    public static JsonObject ResultsJson(EvaluationResult result, string toolVersion)
    {
        int seed = result.Options.Seed ?? (result.Config.TryGetValue("seed", out var s) && s is int i ? i : 0);
        int resamples = result.Options.BootstrapResamples;
        var results = new JsonObject();
        var baseResults = new JsonObject();
        var higher = new JsonObject();
        var samples = new JsonObject();
        var versions = new JsonObject { ["forgetless"] = toolVersion, ["scoring"] = BaseResultCache.ScoringVersion };
        foreach (var (name, (b, c)) in result.Suites)
        {
            results[name] = TaskBlock(c, seed, resamples);
            baseResults[name] = TaskBlock(b, seed, resamples);
            higher[name] = new JsonObject(b.Metrics.Select(m => KeyValuePair.Create(m.Name, (JsonNode?)m.HigherIsBetter)));
            samples[name] = new JsonObject { ["original"] = c.Count, ["effective"] = c.Count };
        }
        var comparison = new JsonObject();
        var forgetting = new JsonObject();
        var gain = new JsonObject();
        foreach (var sc in result.Comparisons)
        {
            var metrics = new JsonObject(sc.Metrics.Select(m => KeyValuePair.Create(m.Metric, (JsonNode?)MetricBlock(m, sc.Role))));
            var categories = new JsonObject(sc.Categories.Select(cat => KeyValuePair.Create(cat.Category, (JsonNode?)new JsonObject
            {
                ["n"] = cat.Count,
                ["metrics"] = new JsonObject(cat.Metrics.Select(m => KeyValuePair.Create(m.Metric, (JsonNode?)MetricBlock(m, sc.Role)))),
            })));
            comparison[sc.Suite] = new JsonObject
            {
                ["type"] = JsonNamingPolicy.CamelCase.ConvertName(sc.Type.ToString()),
                ["role"] = sc.Role == SuiteRole.Old ? "old" : "new",
                ["n"] = sc.Count,
                ["base_source"] = result.BaseSource.GetValueOrDefault(sc.Suite),
                ["metrics"] = metrics,
                ["categories"] = categories,
            };
            var summary = new JsonObject(sc.Metrics.Select(m => KeyValuePair.Create(m.Metric, Num(sc.Role == SuiteRole.Old ? m.Worsening : -m.Worsening))));
            (sc.Role == SuiteRole.Old ? forgetting : gain)[sc.Suite] = summary;
        }
        var gates = new JsonArray(result.Verdicts.Select(v => (JsonNode)new JsonObject
        {
            ["name"] = v.Name,
            ["suite"] = v.Gate.Suite,
            ["metric"] = v.Gate.Metric,
            ["category"] = v.Gate.Category.Length > 0 ? v.Gate.Category : null,
            ["kind"] = v.Gate.Kind,
            ["threshold"] = Num(v.Gate.Threshold),
            ["relative"] = v.Gate.Relative,
            ["decision"] = v.Decision switch { GateDecision.Point => "point", GateDecision.Interval => "interval", _ => "non_inferiority" },
            ["any_of_interval"] = v.Decision == GateDecision.Interval ? v.AnyOfInterval : null,
            ["base"] = Num(v.Base),
            ["candidate"] = Num(v.Candidate),
            ["observed"] = Num(v.Observed),
            ["interval"] = Pair(v.Interval),
            ["bound"] = v.Bound is { } bound ? Num(bound) : null,
            ["passed"] = v.Passed,
            ["message"] = v.Message,
        }).ToArray());
        var config = new JsonObject(result.Config.Select(p => KeyValuePair.Create(p.Key, JsonSerializer.SerializeToNode(p.Value))));
        config["options"] = JsonNode.Parse(result.Options.ToJson());
        return new JsonObject
        {
            ["results"] = results,
            ["base_results"] = baseResults,
            ["higher_is_better"] = higher,
            ["n-samples"] = samples,
            ["comparison"] = comparison,
            ["forgetting"] = forgetting,
            ["gain"] = gain,
            ["gates"] = gates,
            ["passed"] = result.Passed,
            ["samples"] = new JsonArray(result.Samples.Select(x => (JsonNode)new JsonObject
            {
                ["suite"] = x.Suite, ["prompt"] = x.Prompt, ["reference"] = x.Reference, ["base"] = x.Base, ["candidate"] = x.Candidate,
            }).ToArray()),
            ["config"] = config,
            ["versions"] = versions,
            ["date"] = result.Date.ToUnixTimeMilliseconds() / 1000.0,
        };
    }

    /// <summary>JUnit XML: one test case per gate, a failure element on each failed gate.</summary>
    public static XDocument JUnit(EvaluationResult result)
    {
        var cases = result.Verdicts.Select(v =>
        {
            var element = new XElement("testcase",
                new XAttribute("classname", "forgetless.evaluate." + v.Gate.Suite),
                new XAttribute("name", v.Name),
                new XAttribute("time", "0"),
                new XElement("system-out", v.Message));
            if (!v.Passed)
                element.AddFirst(new XElement("failure", new XAttribute("message", v.Message), new XAttribute("type", "ReleaseGate"), v.Message));
            return element;
        }).ToList();
        int failures = result.Verdicts.Count(v => !v.Passed);
        var suite = new XElement("testsuite",
            new XAttribute("name", "forgetless.evaluate.gates"),
            new XAttribute("tests", cases.Count),
            new XAttribute("failures", failures),
            new XAttribute("errors", 0),
            new XAttribute("skipped", 0),
            new XAttribute("timestamp", result.Date.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss", CultureInfo.InvariantCulture)),
            cases);
        return new XDocument(new XDeclaration("1.0", "utf-8", null),
            new XElement("testsuites", new XAttribute("name", "forgetless"), new XAttribute("tests", cases.Count), new XAttribute("failures", failures), suite));
    }

    private static string F(double x) => double.IsFinite(x) ? (x + 0.0).ToString("0.####", CultureInfo.InvariantCulture) : "n/a";

    private static string Ci(Interval i) => $"[{F(i.Low)}, {F(i.High)}]";

    private static string RoleWord(SuiteRole role) => role == SuiteRole.Old ? "forgetting" : "gain";

    private static double Oriented(MetricComparison m, SuiteRole role) => role == SuiteRole.Old ? m.Worsening : -m.Worsening;

    private static Interval OrientedCi(MetricComparison m, SuiteRole role) =>
        role == SuiteRole.Old ? m.WorseningInterval : new Interval(-m.WorseningInterval.High, -m.WorseningInterval.Low);

    // The report's tables, each defined once for report.md and report.html.

    private static ReportTable GatesTable(EvaluationResult result) => new(
        ["gate", "result", "detail"],
        result.Verdicts.Select(v => Row(v.Name, v.Passed ? new ReportCell("pass", CellStyle.Pass) : new ReportCell("FAIL", CellStyle.Fail), v.Message)).ToList());

    private static ReportTable MetricsTable(EvaluationResult result, SuiteComparison sc) => new(
        ["metric", "base", "candidate", "candidate − base", $"{result.Options.Confidence:0%} CI", RoleWord(sc.Role)],
        sc.Metrics.Select(m => Row($"{m.Metric} {(m.HigherIsBetter ? "↑" : "↓")}", $"{F(m.Base)} ± {F(m.BaseStderr)}", $"{F(m.Candidate)} ± {F(m.CandidateStderr)}",
            F(m.Difference), Ci(m.DifferenceInterval), $"{F(Oriented(m, sc.Role))} {Ci(OrientedCi(m, sc.Role))}")).ToList());

    private static ReportTable CategoriesTable(SuiteComparison sc) => new(
        ["category", "n", "metric", "base", "candidate", "candidate − base", "CI"],
        sc.Categories.SelectMany(cat => cat.Metrics.Select(m => Row(cat.Category, cat.Count.ToString(CultureInfo.InvariantCulture), m.Metric,
            F(m.Base), F(m.Candidate), F(m.Difference), Ci(m.DifferenceInterval)))).ToList());

    private static ReportTable SamplesTable(EvaluationResult result) => new(
        ["suite", "prompt", "reference", "base", "candidate"],
        result.Samples.Select(s => Row(s.Suite, Code(s.Prompt), Code(s.Reference), Code(s.Base), Code(s.Candidate))).ToList());

    private static IReadOnlyList<ReportCell> Row(params ReportCell[] cells) => cells;

    private static ReportCell Code(string text) => new(text, CellStyle.Code);

    /// <summary>What was compared: the base model, the candidate stage and its adapter, as far as the config names them.</summary>
    private static IEnumerable<(string Key, string Value)> Compared(EvaluationResult result) =>
        new[] { "base_model", "candidate", "adapter" }
            .Where(key => result.Config.TryGetValue(key, out var v) && v is not null)
            .Select(key => (key, result.Config[key]!.ToString()!));

    private static string Intervals(EvaluationResult result) =>
        $"intervals: {result.Options.Confidence:0%} paired bootstrap, {result.Options.BootstrapResamples} resamples";

    private static string SuiteCaption(EvaluationResult result, SuiteComparison sc) =>
        $"({sc.Role.ToString().ToLowerInvariant()}, {sc.Type}, n = {sc.Count}, base {result.BaseSource.GetValueOrDefault(sc.Suite)})";

    public static string Markdown(EvaluationResult result)
    {
        var md = new StringBuilder();
        md.AppendLine("# Forgetting evaluation").AppendLine();
        md.AppendLine($"**Verdict: {(result.Passed ? "PASS" : "FAIL")}** — {result.Verdicts.Count(v => v.Passed)}/{result.Verdicts.Count} gates passed. ");
        foreach (var (key, value) in Compared(result)) md.AppendLine($"{key}: `{value}`  ");
        md.AppendLine($"date: {result.Date:yyyy-MM-dd HH:mm} UTC; {Intervals(result)}").AppendLine();
        md.AppendLine("## Gates").AppendLine();
        md.Append(GatesTable(result).Markdown());
        md.AppendLine().AppendLine("## Suites").AppendLine();
        md.AppendLine("forgetting = how much worse the candidate is on an `old` suite; gain = how much better on a `new` one (both in the metric's units, oriented by its direction: for perplexity a rise is forgetting).").AppendLine();
        foreach (var sc in result.Comparisons)
        {
            md.AppendLine($"### {sc.Suite} {SuiteCaption(result, sc)}").AppendLine();
            md.Append(MetricsTable(result, sc).Markdown());
            if (sc.Categories.Count > 0) md.AppendLine().Append(CategoriesTable(sc).Markdown());
            md.AppendLine();
        }
        if (result.Samples.Count > 0)
        {
            md.AppendLine("## Sample generations").AppendLine();
            md.Append(SamplesTable(result).Markdown());
            md.AppendLine();
        }
        if (result.Curves is { } curves)
            md.AppendLine($"Learning curves from `{curves.Source}`: {string.Join(", ", curves.Series.Keys)} (charts in report.html).");
        return md.ToString();
    }

    public static string Html(EvaluationResult result)
    {
        string E(string s) => WebUtility.HtmlEncode(s);
        var h = new StringBuilder();
        h.AppendLine("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Forgetting evaluation</title><style>");
        h.AppendLine("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}");
        h.AppendLine(".pass{color:#17732f;font-weight:bold}.fail{color:#b3261e;font-weight:bold}code,pre{background:#f4f4f4;padding:1px 4px}.charts svg{max-width:100%;height:auto}");
        h.AppendLine("</style></head><body>");
        h.AppendLine($"<h1>Forgetting evaluation — <span class=\"{(result.Passed ? "pass\">PASS" : "fail\">FAIL")}</span></h1>");
        h.AppendLine("<p>");
        foreach (var (key, value) in Compared(result)) h.AppendLine($"{key}: <code>{E(value)}</code><br>");
        h.AppendLine($"date: {result.Date:yyyy-MM-dd HH:mm} UTC; {Intervals(result)}</p>");
        h.AppendLine("<h2>Gates</h2>");
        h.Append(GatesTable(result).Html());
        h.AppendLine("<h2>Change per suite</h2><div class=\"charts\">");
        foreach (var panel in EvaluationCharts.Deltas(result)) h.AppendLine(panel);
        h.AppendLine("</div>");
        foreach (var sc in result.Comparisons)
        {
            h.AppendLine($"<h3>{E(sc.Suite)} <small>{E(SuiteCaption(result, sc))}</small></h3>");
            h.Append(MetricsTable(result, sc).Html());
            if (sc.Categories.Count > 0)
                h.Append("<details><summary>per category</summary>").Append(CategoriesTable(sc).Html()).AppendLine("</details>");
        }
        if (result.Curves is { } curves)
        {
            h.AppendLine($"<h2>Learning curves</h2><p>from <code>{E(curves.Source)}</code></p><div class=\"charts\">");
            foreach (var panel in EvaluationCharts.Curves(curves)) h.AppendLine(panel);
            h.AppendLine("</div>");
        }
        if (result.Samples.Count > 0)
        {
            h.AppendLine("<h2>Sample generations</h2>");
            h.Append(SamplesTable(result).Html());
        }
        h.AppendLine("</body></html>");
        return h.ToString();
    }
}
