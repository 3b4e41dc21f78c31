using System.Net;
using System.Text.RegularExpressions;
using Forgetless.Evaluation;

namespace Forgetless.Tests.Evaluation;

public sealed class ReportTableTests
{
    private static readonly ReportTable Awkward = new(
        ["name", "verdict", "text"],
        [
            [new ReportCell("a|b\nc"), new ReportCell("FAIL", CellStyle.Fail), new ReportCell("x`y|<z>", CellStyle.Code)],
            [new ReportCell("<&>"), new ReportCell("pass", CellStyle.Pass), new ReportCell("plain")],
        ]);

    [Fact]
    public void Markdown_keeps_each_cell_in_its_column()
    {
        Awkward.Markdown().Should().Be(
            "| name | verdict | text |\n" +
            "|---|---|---|\n" +
            "| a\\|b c | **FAIL** | `x'y\\|<z>` |\n" +
            "| <&> | pass | plain |\n");
    }

    [Fact]
    public void Html_encodes_every_cell_and_marks_verdicts()
    {
        Awkward.Html().Should().Be(
            "<table><tr><th>name</th><th>verdict</th><th>text</th></tr>\n" +
            "<tr><td>a|b\nc</td><td class=\"fail\">FAIL</td><td><code>x`y|&lt;z&gt;</code></td></tr>\n" +
            "<tr><td>&lt;&amp;&gt;</td><td class=\"pass\">pass</td><td>plain</td></tr>\n" +
            "</table>\n");
    }

    [Fact]
    public void Report_md_and_report_html_show_the_same_tables()
    {
        var heldout = (Items.Ppl("heldout", Enumerable.Repeat(1.0, 40)), Items.Ppl("heldout", Enumerable.Range(0, 40).Select(i => 1.0 + i % 3 * 0.1)));
        var facts = (Items.Acc("facts", Enumerable.Range(0, 60).Select(i => i % 4 == 0 ? 0.0 : 1.0), category: i => i % 2 == 0 ? "seen" : "unseen"),
            Items.Acc("facts", Enumerable.Range(0, 60).Select(i => i % 3 == 0 ? 0.0 : 1.0), category: i => i % 2 == 0 ? "seen" : "unseen"));
        var suites = new[] { heldout, facts }.ToDictionary(p => p.Item1.Suite, p => p);
        var gates = new List<GateOptions>
        {
            new() { Name = "heldout | bpb", Suite = "heldout", Metric = "bits_per_byte", MaxDrop = 0.5, Relative = true },
            new() { Suite = "facts", Metric = "acc", Category = "seen", MaxDrop = 0.01 },
        };
        var result = new EvaluationResult(
            suites.Values.Select(p => SuiteComparison.Of(p.Item1, p.Item2, seed: 3, resamples: 200)).ToList(),
            suites,
            ReleaseGates.Judge(gates, suites, GateDecision.Point, false, 1),
            [new GenerationSample("facts", "Q: `a|b`?", "x", "y <z>", "w\nv")],
            null,
            new Dictionary<string, string> { ["heldout"] = "scored", ["facts"] = "cache" },
            new EvaluateOptions(),
            new Dictionary<string, object?> { ["baseModel"] = "base" },
            DateTimeOffset.UnixEpoch);

        var markdownRows = MarkdownRows(EvaluationReports.Markdown(result));
        var htmlRows = HtmlRows(EvaluationReports.Html(result));

        htmlRows.Should().Equal(markdownRows, (h, m) => h.SequenceEqual(m));
        // gates, heldout's metrics, facts' metrics and categories, samples: five headers.
        markdownRows.Count(r => r[0] is "gate" or "metric" or "category" or "suite").Should().Be(5);
        markdownRows.Should().Contain(r => r[0] == "heldout | bpb", "a pipe in a cell stays in that cell");
        markdownRows.Single(r => r[0] == "facts").Should().Equal("facts", "Q: 'a|b'?", "x", "y <z>", "w v");
    }

    /// <summary>Every row of every Markdown table (headers included, separators not), cells unescaped.</summary>
    private static List<string[]> MarkdownRows(string markdown) =>
        markdown.Split('\n')
            .Where(l => l.StartsWith("| ", StringComparison.Ordinal))
            .Select(l => Regex.Split(l[2..^2], @"(?<!\\) \| ")
                .Select(c => c.Replace("\\|", "|").Trim('`').Replace("**", ""))
                .ToArray())
            .ToList();

    private static List<string[]> HtmlRows(string html) =>
        Regex.Matches(html, "<tr>(.*?)</tr>", RegexOptions.Singleline)
            .Select(row => Regex.Matches(row.Groups[1].Value, "<t[dh][^>]*>(.*?)</t[dh]>", RegexOptions.Singleline)
                .Select(c => WebUtility.HtmlDecode(Regex.Replace(c.Groups[1].Value, "</?code>", "")).Replace("`", "'").Replace('\n', ' '))
                .ToArray())
            .ToList();
}
