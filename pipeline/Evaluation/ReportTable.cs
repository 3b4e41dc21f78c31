using System.Net;
using System.Text;

namespace Forgetless.Evaluation;

/// <summary>How a cell reads: plain text, code (prompts and generations, kept verbatim), or a gate verdict.</summary>
public enum CellStyle { Text, Code, Pass, Fail }

public sealed record ReportCell(string Text, CellStyle Style = CellStyle.Text)
{
    public static implicit operator ReportCell(string text) => new(text);
}

/// <summary>
/// A table of the evaluation report, defined once and rendered both as Markdown (report.md) and as HTML
/// (report.html), so the two files cannot disagree about a column or a number.
/// </summary>
public sealed record ReportTable(IReadOnlyList<string> Columns, IReadOnlyList<IReadOnlyList<ReportCell>> Rows)
{
    public string Markdown()
    {
        var md = new StringBuilder();
        md.AppendLine("| " + string.Join(" | ", Columns) + " |");
        md.AppendLine("|" + string.Concat(Columns.Select(_ => "---|")));
        foreach (var row in Rows) md.AppendLine("| " + string.Join(" | ", row.Select(MarkdownCell)) + " |");
        return md.ToString();
    }

    public string Html()
    {
        var h = new StringBuilder();
        h.AppendLine("<table><tr>" + string.Concat(Columns.Select(c => $"<th>{WebUtility.HtmlEncode(c)}</th>")) + "</tr>");
        foreach (var row in Rows) h.AppendLine("<tr>" + string.Concat(row.Select(HtmlCell)) + "</tr>");
        h.AppendLine("</table>");
        return h.ToString();
    }

    /// <summary>A pipe or a line break would end the Markdown cell; code spans cannot hold a backtick.</summary>
    private static string MarkdownCell(ReportCell cell)
    {
        string text = cell.Text.Replace("|", "\\|").Replace("\n", " ");
        return cell.Style switch
        {
            CellStyle.Code => "`" + text.Replace("`", "'") + "`",
            CellStyle.Fail => "**" + text + "**",
            _ => text,
        };
    }

    private static string HtmlCell(ReportCell cell)
    {
        string text = WebUtility.HtmlEncode(cell.Text);
        return cell.Style switch
        {
            CellStyle.Code => $"<td><code>{text}</code></td>",
            CellStyle.Pass => $"<td class=\"pass\">{text}</td>",
            CellStyle.Fail => $"<td class=\"fail\">{text}</td>",
            _ => $"<td>{text}</td>",
        };
    }
}
