using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Forgetless.Stages.Diagnostics;

/// <summary>
/// Where each key of a pipeline file is: <c>evaluate.gates[3].minGain</c> → line 58, column 9. Read with the
/// same leniency as the configuration loader (comments and trailing commas allowed). Keys are matched without
/// regard to case, as configuration keys are, and list items may be written <c>gates[3]</c> or <c>gates.3</c>.
/// </summary>
public sealed partial class PipelineFileLocations
{
    private readonly Dictionary<string, (int Line, int Column, string Key)> keys = new(StringComparer.OrdinalIgnoreCase);

    private PipelineFileLocations(string file) => File = file;

    /// <summary>Absolute path of the pipeline file.</summary>
    public string File { get; }

    /// <summary>The locations of <paramref name="path"/>'s keys; a file that is missing or not valid JSON has none.</summary>
    public static PipelineFileLocations Read(string path)
    {
        var locations = new PipelineFileLocations(Path.GetFullPath(path));
        byte[] bytes;
        try
        {
            bytes = System.IO.File.ReadAllBytes(locations.File);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return locations;
        }
        try
        {
            locations.Index(bytes);
        }
        catch (JsonException e)
        {
            // Keys found before the mistake stay; the mistake itself is where a "not valid JSON" error points.
            locations.SyntaxError = new SourceLocation(locations.File, (int)(e.LineNumber ?? 0) + 1, (int)(e.BytePositionInLine ?? 0) + 1);
        }
        return locations;
    }

    /// <summary>Where the file stops being valid JSON; null when it parses.</summary>
    public SourceLocation? SyntaxError { get; private set; }

    private void Index(byte[] bytes)
    {
        var lineStarts = LineStarts(bytes);
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        // One frame per open object or array: the path to it, and for an array the index of the next item.
        var frames = new Stack<(string Path, int NextIndex, bool IsArray)>();
        string? property = null;
        while (reader.Read())
        {
            string? here = null;
            if (reader.TokenType == JsonTokenType.PropertyName)
            {
                property = reader.GetString();
                string parent = frames.Count > 0 ? frames.Peek().Path : "";
                Record(Join(parent, property!), reader.TokenStartIndex);
                continue;
            }
            if (reader.TokenType is JsonTokenType.EndObject or JsonTokenType.EndArray)
            {
                frames.Pop();
                continue;
            }
            if (frames.Count > 0)
            {
                var top = frames.Peek();
                if (top.IsArray)
                {
                    here = Join(top.Path, top.NextIndex.ToString(System.Globalization.CultureInfo.InvariantCulture));
                    frames.Pop();
                    frames.Push(top with { NextIndex = top.NextIndex + 1 });
                    Record(here, reader.TokenStartIndex);
                }
                else
                {
                    here = Join(top.Path, property!);
                }
            }
            if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
                frames.Push((here ?? "", 0, reader.TokenType == JsonTokenType.StartArray));
        }

        void Record(string key, long byteOffset)
        {
            int line = UpperBound(lineStarts, byteOffset);
            int lineStart = lineStarts[line - 1];
            int column = Encoding.UTF8.GetCharCount(bytes, lineStart, (int)byteOffset - lineStart) + 1;
            keys.TryAdd(key, (line, column, key));
        }
    }

    private static string Join(string parent, string name) => parent.Length == 0 ? name : parent + "." + name;

    private static List<int> LineStarts(byte[] bytes)
    {
        var starts = new List<int> { 0 };
        for (int i = 0; i < bytes.Length; i++)
            if (bytes[i] == (byte)'\n') starts.Add(i + 1);
        return starts;
    }

    /// <summary>1-based number of the line holding <paramref name="offset"/>.</summary>
    private static int UpperBound(List<int> lineStarts, long offset)
    {
        int lo = 0, hi = lineStarts.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) / 2;
            if (lineStarts[mid] <= offset) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }

    /// <summary>The location of <paramref name="key"/> (dots and <c>[i]</c> both accepted), else of its nearest enclosing key.</summary>
    public SourceLocation? Of(string key)
    {
        string normalized = Normalize(key);
        for (string? k = normalized; k is not null; k = Parent(k))
            if (keys.TryGetValue(k, out var at))
                return new SourceLocation(File, at.Line, at.Column, ToDisplay(at.Key));
        return null;
    }

    /// <summary>
    /// The location of the configuration key that <paramref name="message"/> is about: the most specific key path it
    /// mentions (<c>'run.device' = 'gpu' is not valid</c> → <c>run.device</c>), or the section it starts with
    /// (<c>finetune: kd is on, but ...</c> → <c>finetune</c>). Null when it names no key of this file.
    /// </summary>
    public SourceLocation? Find(string message)
    {
        SourceLocation? best = null;
        int bestDepth = 0;
        foreach (Match m in KeyPath().Matches(message))
        {
            string normalized = Normalize(m.Value);
            for (string? k = normalized; k is not null; k = Parent(k))
            {
                if (!keys.TryGetValue(k, out var at)) continue;
                int depth = k.Count(c => c == '.') + 1;
                if (depth > bestDepth) (best, bestDepth) = (new SourceLocation(File, at.Line, at.Column, ToDisplay(at.Key)), depth);
                break;
            }
        }
        if (best is null && LeadingSection().Match(message) is { Success: true } lead && keys.TryGetValue(lead.Groups[1].Value, out var section))
            best = new SourceLocation(File, section.Line, section.Column, section.Key);
        return best;
    }

    private static string Normalize(string key) => ListIndex().Replace(key, ".$1").Replace(':', '.');

    private static string? Parent(string key) => key.LastIndexOf('.') is var i and > 0 ? key[..i] : null;

    /// <summary><c>evaluate.gates.3.minGain</c> → <c>evaluate.gates[3].minGain</c>, as the error messages write it.</summary>
    private static string ToDisplay(string key) => DottedIndex().Replace(key, "[$1]");

    [GeneratedRegex(@"\[(\d+)\]")]
    private static partial Regex ListIndex();

    [GeneratedRegex(@"\.(\d+)(?=\.|$)")]
    private static partial Regex DottedIndex();

    /// <summary>A key path: a name, then at least one <c>.name</c>, <c>.3</c> or <c>[3]</c>.</summary>
    [GeneratedRegex(@"(?<![\w./-])[A-Za-z_$][\w$]*(?:\.[\w$]+|\[\d+\])+")]
    private static partial Regex KeyPath();

    [GeneratedRegex(@"^\s*([A-Za-z][\w]*)\s*:")]
    private static partial Regex LeadingSection();
}
