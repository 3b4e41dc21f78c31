using System.Text.Json;

namespace Forgetless.Data.Sources;

/// <summary>One JSON object per line. Blank lines are ignored; anything else that is not an object is a bad row.</summary>
internal static class JsonLinesSource
{
    public static IEnumerable<SourceRecord> Read(string path, FieldMapping mapping, CancellationToken cancellationToken)
    {
        using var reader = new Utf8LineReader(path);
        while (reader.TryReadLine(out var bytes))
        {
            if ((reader.LineNumber & 0x3FF) == 0) cancellationToken.ThrowIfCancellationRequested();
            if (IsBlank(bytes.Span)) continue;
            yield return Parse(bytes, reader.LineNumber, mapping);
        }
    }

    internal static SourceRecord Parse(ReadOnlyMemory<byte> bytes, long line, FieldMapping mapping)
    {
        if (!System.Text.Unicode.Utf8.IsValid(bytes.Span))
        {
            Utf8LineReader.TryDecode(bytes.Span, out _, out var utf8Error);
            return SourceRecord.Bad(line, utf8Error!);
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(bytes);
        }
        catch (JsonException ex)
        {
            return SourceRecord.Bad(line, $"bad JSON ({ex.Message.Split(" LineNumber")[0].TrimEnd('.', ' ')}); expected one JSON object per line.");
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                return SourceRecord.Bad(line, $"line is a JSON {Describe(root.ValueKind)}; expected a JSON object.");
            if (mapping.Chat != ChatFormat.None) return ChatRecords.Read(root, mapping.Chat, line);
            return mapping.Map(line, name =>
            {
                if (!root.TryGetProperty(name, out var value)) return FieldMapping.Field.Missing;
                return value.ValueKind switch
                {
                    JsonValueKind.String => FieldMapping.Field.Of(value.GetString()),
                    JsonValueKind.Null => FieldMapping.Field.Of(null),
                    var kind => FieldMapping.Field.Wrong("a " + Describe(kind)),
                };
            });
        }
    }

    internal static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        JsonValueKind.Null => "null",
        _ => kind.ToString(),
    };

    internal static bool IsBlank(ReadOnlySpan<byte> bytes)
    {
        foreach (var b in bytes)
            if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r')) return false;
        return true;
    }
}
