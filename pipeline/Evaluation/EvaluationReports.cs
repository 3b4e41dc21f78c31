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
            ["decision"] = v.Decision == GateDecision.Point ? "point" : "interval",
            ["any_of_interval"] = v.AnyOfInterval,
            ["base"] = Num(v.Base),
            ["candidate"] = Num(v.Candidate),
            ["observed"] = Num(v.Observed),
            ["interval"] = Pair(v.Interval),
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

    public static string Markdown(EvaluationResult result)
    {
        var md = new StringBuilder();
        md.AppendLine("# Forgetting evaluation").AppendLine();
        md.AppendLine($"**Verdict: {(result.Passed ? "PASS" : "FAIL")}** — {result.Verdicts.Count(v => v.Passed)}/{result.Verdicts.Count} gates passed. ");
        foreach (var key in new[] { "baseModel", "candidate", "adapter" })
            if (result.Config.TryGetValue(key, out var v) && v is not null) md.AppendLine($"{key}: `{v}`  ");
        md.AppendLine($"date: {result.Date:yyyy-MM-dd HH:mm} UTC; intervals: {result.Options.Confidence:0%} paired bootstrap, {result.Options.BootstrapResamples} resamples").AppendLine();
        md.AppendLine("## Gates").AppendLine();
        md.AppendLine("| gate | result | detail |").AppendLine("|---|---|---|");
        foreach (var v in result.Verdicts) md.AppendLine($"| {v.Name} | {(v.Passed ? "pass" : "**FAIL**")} | {v.Message.Replace("|", "\\|")} |");
        md.AppendLine().AppendLine("## Suites").AppendLine();
        md.AppendLine("forgetting = how much worse the candidate is on an `old` suite; gain = how much better on a `new` one (both in the metric's units, oriented by its direction: for perplexity a rise is forgetting).").AppendLine();
        foreach (var sc in result.Comparisons)
        {
            md.AppendLine($"### {sc.Suite} ({sc.Role.ToString().ToLowerInvariant()}, {sc.Type}, n = {sc.Count}, base {result.BaseSource.GetValueOrDefault(sc.Suite)})").AppendLine();
            md.AppendLine($"| metric | base | candidate | candidate − base | {result.Options.Confidence:0%} CI | {RoleWord(sc.Role)} |").AppendLine("|---|---|---|---|---|---|");
            foreach (var m in sc.Metrics)
                md.AppendLine($"| {m.Metric} {(m.HigherIsBetter ? "↑" : "↓")} | {F(m.Base)} ± {F(m.BaseStderr)} | {F(m.Candidate)} ± {F(m.CandidateStderr)} | {F(m.Difference)} | {Ci(m.DifferenceInterval)} | {F(Oriented(m, sc.Role))} |");
            if (sc.Categories.Count > 0)
            {
                md.AppendLine().AppendLine("| category | n | metric | base | candidate | candidate − base | CI |").AppendLine("|---|---|---|---|---|---|---|");
                foreach (var cat in sc.Categories)
                foreach (var m in cat.Metrics)
                    md.AppendLine($"| {cat.Category} | {cat.Count} | {m.Metric} | {F(m.Base)} | {F(m.Candidate)} | {F(m.Difference)} | {Ci(m.DifferenceInterval)} |");
            }
            md.AppendLine();
        }
        if (result.Samples.Count > 0)
        {
            md.AppendLine("## Sample generations").AppendLine();
            md.AppendLine("| suite | prompt | reference | base | candidate |").AppendLine("|---|---|---|---|---|");
            foreach (var s in result.Samples)
                md.AppendLine($"| {s.Suite} | {Cell(s.Prompt)} | {Cell(s.Reference)} | {Cell(s.Base)} | {Cell(s.Candidate)} |");
            md.AppendLine();
        }
        if (result.Curves is { } curves)
            md.AppendLine($"Learning curves from `{curves.Source}`: {string.Join(", ", curves.Series.Keys)} (charts in report.html).");
        return md.ToString();
    }

    private static string Cell(string s) => "`" + s.Replace("`", "'").Replace("|", "\\|").Replace("\n", " ") + "`";

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
        foreach (var key in new[] { "baseModel", "candidate", "adapter" })
            if (result.Config.TryGetValue(key, out var v) && v is not null) h.AppendLine($"{key}: <code>{E(v.ToString()!)}</code><br>");
        h.AppendLine($"{result.Date:yyyy-MM-dd HH:mm} UTC · {result.Options.Confidence:0%} paired bootstrap intervals, {result.Options.BootstrapResamples} resamples</p>");
        h.AppendLine("<h2>Gates</h2><table><tr><th>gate</th><th>result</th><th>detail</th></tr>");
        foreach (var v in result.Verdicts)
            h.AppendLine($"<tr><td>{E(v.Name)}</td><td class=\"{(v.Passed ? "pass\">pass" : "fail\">FAIL")}</td><td>{E(v.Message)}</td></tr>");
        h.AppendLine("</table>");
        h.AppendLine("<h2>Change per suite</h2><div class=\"charts\">");
        h.AppendLine(EvaluationCharts.Deltas(result));
        h.AppendLine("</div>");
        foreach (var sc in result.Comparisons)
        {
            h.AppendLine($"<h3>{E(sc.Suite)} <small>({sc.Role.ToString().ToLowerInvariant()}, {sc.Type}, n = {sc.Count}, base {E(result.BaseSource.GetValueOrDefault(sc.Suite) ?? "")})</small></h3>");
            h.AppendLine($"<table><tr><th>metric</th><th>base</th><th>candidate</th><th>candidate − base</th><th>CI</th><th>{RoleWord(sc.Role)}</th></tr>");
            foreach (var m in sc.Metrics)
                h.AppendLine($"<tr><td>{E(m.Metric)} {(m.HigherIsBetter ? "↑" : "↓")}</td><td>{F(m.Base)} ± {F(m.BaseStderr)}</td><td>{F(m.Candidate)} ± {F(m.CandidateStderr)}</td><td>{F(m.Difference)}</td><td>{Ci(m.DifferenceInterval)}</td><td>{F(Oriented(m, sc.Role))} {Ci(OrientedCi(m, sc.Role))}</td></tr>");
            h.AppendLine("</table>");
            if (sc.Categories.Count > 0)
            {
                h.AppendLine("<details><summary>per category</summary><table><tr><th>category</th><th>n</th><th>metric</th><th>base</th><th>candidate</th><th>candidate − base</th><th>CI</th></tr>");
                foreach (var cat in sc.Categories)
                foreach (var m in cat.Metrics)
                    h.AppendLine($"<tr><td>{E(cat.Category)}</td><td>{cat.Count}</td><td>{E(m.Metric)}</td><td>{F(m.Base)}</td><td>{F(m.Candidate)}</td><td>{F(m.Difference)}</td><td>{Ci(m.DifferenceInterval)}</td></tr>");
                h.AppendLine("</table></details>");
            }
        }
        if (result.Curves is { } curves)
        {
            h.AppendLine($"<h2>Learning curves</h2><p>from <code>{E(curves.Source)}</code></p><div class=\"charts\">");
            h.AppendLine(EvaluationCharts.Curves(curves));
            h.AppendLine("</div>");
        }
        if (result.Samples.Count > 0)
        {
            h.AppendLine("<h2>Sample generations</h2><table><tr><th>suite</th><th>prompt</th><th>reference</th><th>base</th><th>candidate</th></tr>");
            foreach (var s in result.Samples)
                h.AppendLine($"<tr><td>{E(s.Suite)}</td><td><code>{E(s.Prompt)}</code></td><td><code>{E(s.Reference)}</code></td><td><code>{E(s.Base)}</code></td><td><code>{E(s.Candidate)}</code></td></tr>");
            h.AppendLine("</table>");
        }
        h.AppendLine("</body></html>");
        return h.ToString();
    }
}
