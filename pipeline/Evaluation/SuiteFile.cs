using System.Text.Json;
using System.Text.Json.Nodes;

namespace Forgetless.Evaluation;

/// <summary>Reads a suite's JSON-lines file; a bad row is an error naming the file, line and field.</summary>
public static class SuiteFile
{
    public sealed record Row(int Line, JsonObject Json, string Path)
    {
        public string String(string field) =>
            Json[field] is JsonValue v && v.TryGetValue<string>(out var s) ? s
            : throw new SuiteFormatException($"{Path}:{Line}: field '{field}' must be a string");

        public string? OptionalString(string field) =>
            Json[field] is null ? null : String(field);

        public int Int(string field) =>
            Json[field] is JsonValue v && v.TryGetValue<int>(out var i) ? i
            : throw new SuiteFormatException($"{Path}:{Line}: field '{field}' must be a whole number");

        public IReadOnlyList<string> Strings(string field) =>
            Json[field] is JsonArray a && a.All(x => x is JsonValue v && v.TryGetValue<string>(out _))
                ? a.Select(x => x!.GetValue<string>()).ToList()
                : throw new SuiteFormatException($"{Path}:{Line}: field '{field}' must be a list of strings");

        public IReadOnlyList<string>? OptionalStrings(string field) => Json[field] is null ? null : Strings(field);
    }

    public static IReadOnlyList<Row> Read(string path, int limit = 0)
    {
        if (!File.Exists(path)) throw new SuiteFormatException($"{path}: evaluation suite file not found");
        var rows = new List<Row>();
        int line = 0;
        foreach (var text in File.ReadLines(path))
        {
            line++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            JsonNode? node;
            try
            {
                node = JsonNode.Parse(text);
            }
            catch (JsonException e)
            {
                throw new SuiteFormatException($"{path}:{line}: not valid JSON — {e.Message}");
            }
            if (node is not JsonObject obj) throw new SuiteFormatException($"{path}:{line}: each line must be a JSON object");
            rows.Add(new Row(line, obj, path));
            if (limit > 0 && rows.Count >= limit) break;
        }
        if (rows.Count == 0) throw new SuiteFormatException($"{path}: the suite has no items");
        return rows;
    }
}

/// <summary>A malformed evaluation suite file.</summary>
public sealed class SuiteFormatException(string message) : UserInputException(message);
