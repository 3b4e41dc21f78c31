using System.Text;
using System.Text.Json;

namespace Forgetless.Configuration;

/// <summary>
/// Reads a pipeline file into settings, each with the line it was written on. It replaces .NET's JSON configuration
/// provider, which reports a duplicated key only as "not valid JSON", turns <c>null</c> into a missing value (so an
/// integer reads as 0) and drops empty lists (so <c>[]</c> cannot empty a list). Comments and trailing commas are
/// allowed, as there.
/// </summary>
public static class JsonSettingsReader
{
    public static IReadOnlyList<ConfigSetting> Read(byte[] utf8, string fileLabel)
    {
        var bytes = utf8.AsSpan().StartsWith("\uFEFF"u8) ? utf8[3..] : utf8;
        var walk = new Walk(bytes, fileLabel);
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        try
        {
            walk.Document(ref reader);
        }
        catch (JsonException e)
        {
            string where = e.LineNumber is { } line ? $":{line + 1}:{e.BytePositionInLine + 1}" : "";
            throw new ConfigException($"{fileLabel}{where}: not valid JSON — {e.Message}");
        }
        return walk.Settings;
    }

    private sealed class Walk(byte[] bytes, string file)
    {
        private int lineCountedTo;
        private int line = 1;

        public List<ConfigSetting> Settings { get; } = [];

        public void Document(ref Utf8JsonReader reader)
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                throw new ConfigException($"{file}:{Line(ref reader)}: the pipeline file must be one JSON object with a section per stage");
            Object(ref reader, "");
            if (reader.Read()) throw new ConfigException($"{file}:{Line(ref reader)}: text after the end of the JSON object");
        }

        /// <summary>1-based line of the current token (counted incrementally: tokens only move forward).</summary>
        private int Line(ref Utf8JsonReader reader)
        {
            int end = (int)reader.TokenStartIndex;
            for (; lineCountedTo < end; lineCountedTo++)
                if (bytes[lineCountedTo] == (byte)'\n') line++;
            return line;
        }

        private static string Dotted(string key) => key.Replace(':', '.');

        /// <summary>Reads an object's keys; false when it has none.</summary>
        private bool Object(ref Utf8JsonReader reader, string prefix)
        {
            var seen = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase); // configuration keys ignore case
            while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
            {
                string name = reader.GetString()!;
                string key = prefix.Length == 0 ? name : prefix + ":" + name;
                int at = Line(ref reader);
                if (seen.TryGetValue(name, out int first))
                    throw new ConfigException($"{file}:{at}: '{Dotted(key)}' is written twice (first on line {first}); keep one");
                seen[name] = at;
                reader.Read();
                Value(ref reader, key);
            }
            return seen.Count > 0;
        }

        private void Value(ref Utf8JsonReader reader, string key)
        {
            string origin = $"{file}:{Line(ref reader)}";
            switch (reader.TokenType)
            {
                case JsonTokenType.StartObject:
                    // An empty object still names its key, so that a misspelt empty section is reported.
                    if (!Object(ref reader, key)) Settings.Add(new ConfigSetting(key, "", origin));
                    break;
                case JsonTokenType.StartArray:
                    int index = 0;
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray) Value(ref reader, key + ":" + index++);
                    if (index == 0) Settings.Add(new ConfigSetting(key, "", origin, EmptyList: true));
                    break;
                case JsonTokenType.String:
                    Settings.Add(new ConfigSetting(key, reader.GetString()!, origin));
                    break;
                case JsonTokenType.Number:
                    Settings.Add(new ConfigSetting(key, Encoding.UTF8.GetString(reader.ValueSpan), origin));
                    break;
                case JsonTokenType.True or JsonTokenType.False:
                    Settings.Add(new ConfigSetting(key, reader.TokenType == JsonTokenType.True ? "true" : "false", origin));
                    break;
                case JsonTokenType.Null:
                    throw new ConfigException($"{origin}: '{Dotted(key)}' is null; give a value, or remove the key to use the default");
                default:
                    throw new ConfigException($"{origin}: '{Dotted(key)}' has an unexpected {reader.TokenType} token");
            }
        }
    }
}
