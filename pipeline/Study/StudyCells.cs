using System.Globalization;
using Forgetless.Configuration;

namespace Forgetless.Study;

/// <summary>One cell of a study: its name (its folder under the study root) and its settings, in the order they apply.</summary>
public sealed record StudyCell(string Name, IReadOnlyList<KeyValuePair<string, string>> Settings)
{
    /// <summary>The settings as <c>section.key=value</c> assignments.</summary>
    public IEnumerable<string> Assignments => Settings.Select(s => $"{s.Key}={s.Value}");
}

/// <summary>Expands a study section into its cells and picks a shard's share of them.</summary>
public static class StudyCells
{
    /// <summary>The grid's cells (first axis slowest), then the explicit ones; a name given twice is a named error.</summary>
    public static IReadOnlyList<StudyCell> Expand(StudyOptions study)
    {
        var cells = new List<StudyCell>();
        if (study.Grid.Count > 0)
        {
            IEnumerable<List<(StudyAxis Axis, string Value)>> combinations = [[]];
            foreach (var axis in study.Grid)
                combinations = combinations.SelectMany(c => axis.Values.Select(v => new List<(StudyAxis, string)>(c) { (axis, v) })).ToList();
            foreach (var combination in combinations)
                cells.Add(new StudyCell(
                    string.Join("-", combination.Select(c => Sanitize(Label(c.Axis) + c.Value))),
                    combination.Select(c => KeyValuePair.Create(c.Axis.Key, c.Value)).ToList()));
        }
        cells.AddRange(study.Cells.Select(c => new StudyCell(c.Name, c.Set.ToList())));

        var twice = cells.GroupBy(c => c.Name, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1);
        if (twice is not null)
            throw new ConfigException($"study: the cell name '{twice.Key}' is given {twice.Count()} times (grid cells are named LABELVALUE-…); names must be unique");
        if (cells.Count == 0) throw new ConfigException("study: names no cells; give study.grid or study.cells");
        // A cell's own setting replaces the shared one of the same key (as it would win when applied), so every key
        // is listed once — in study.json too.
        var common = study.Settings.ToList();
        return cells.Select(c => c with { Settings = [.. common.Where(s => c.Settings.All(own => own.Key != s.Key)), .. c.Settings] }).ToList();
    }

    /// <summary>
    /// Shard <paramref name="index"/> of <paramref name="count"/> (1-based): the cells at positions index−1, index−1+count, …
    /// Every cell is in exactly one shard, and which one depends only on the study's cell order.
    /// </summary>
    public static IReadOnlyList<StudyCell> Shard(IReadOnlyList<StudyCell> cells, int index, int count) =>
        cells.Where((_, position) => position % count == index - 1).ToList();

    /// <summary>Parses <c>--shard i/n</c> (1 ≤ i ≤ n).</summary>
    public static (int Index, int Count) ParseShard(string text)
    {
        var parts = text.Split('/');
        if (parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int i)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= 1 && i >= 1 && i <= n)
            return (i, n);
        throw new ConfigException($"--shard {text}: expected i/n with 1 ≤ i ≤ n, e.g. --shard 2/4");
    }

    public static bool IsCellName(string name) =>
        name.Length > 0 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_') && name is not "." and not ".." && name != ReportFolder;

    /// <summary>The study root's folder for the report (never a cell's name).</summary>
    public const string ReportFolder = "report";

    private static string Label(StudyAxis axis) => axis.Label.Length > 0 ? axis.Label : axis.Key[(axis.Key.LastIndexOf('.') + 1)..];

    private static string Sanitize(string text) =>
        new(text.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' ? c : '_').ToArray());
}
