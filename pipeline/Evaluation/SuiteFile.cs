using System.Text.Json;
using System.Text.Json.Nodes;

namespace Forgetless.Evaluation;

/// <summary>Reads a suite's JSON-lines file; a bad row is an error naming the file, line and field.</summary>
public static class SuiteFile
{
    /// <summary>One row; fields are looked up through the suite's renames (<see cref="SuiteOptions.Fields"/>).</summary>
    public sealed record Row(int Line, JsonObject Json, string Path, IReadOnlyDictionary<string, string>? Fields = null)
    {
        /// <summary>The file's name for a suite field.</summary>
        public string Source(string field) => Fields is not null && Fields.TryGetValue(field, out var renamed) ? renamed : field;

        private JsonNode? Node(string field) => Json[Source(field)];

        private SuiteFormatException Error(string field, string expected) =>
            new(Node(field) is null
                ? $"{Path}:{Line}: field '{Source(field)}' is missing; expected {expected}"
                : $"{Path}:{Line}: field '{Source(field)}' must be {expected}");

        public bool Has(string field) => Node(field) is not null;

        public string String(string field) =>
            Node(field) is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw Error(field, "a string");

        public string? OptionalString(string field) =>
            Node(field) is null ? null : String(field);

        /// <summary>A whole number, also accepted as a string of digits (HellaSwag dumps write <c>"label": "2"</c>).</summary>
        public int Int(string field) => Node(field) switch
        {
            JsonValue v when v.TryGetValue<int>(out var i) => i,
            JsonValue v when v.TryGetValue<string>(out var s) && int.TryParse(s, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var i) => i,
            _ => throw Error(field, "a whole number"),
        };

        public IReadOnlyList<string> Strings(string field) =>
            Node(field) is JsonArray a && a.All(x => x is JsonValue v && v.TryGetValue<string>(out _))
                ? a.Select(x => x!.GetValue<string>()).ToList()
                : throw Error(field, "a list of strings");

        public IReadOnlyList<string>? OptionalStrings(string field) => Node(field) is null ? null : Strings(field);
    }

    public static IReadOnlyList<Row> Read(string path, int limit = 0, IReadOnlyDictionary<string, string>? fields = null)
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
            rows.Add(new Row(line, obj, path, fields));
            if (limit > 0 && rows.Count >= limit) break;
        }
        if (rows.Count == 0) throw new SuiteFormatException($"{path}: the suite has no items");
        return rows;
    }
}

/// <summary>A malformed evaluation suite file.</summary>
public sealed class SuiteFormatException(string message) : UserInputException(message);
