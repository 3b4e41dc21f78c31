using System.Text;

namespace Forgetless.Data.Sources;

/// <summary>
/// RFC 4180 CSV with a header row: comma separated, fields may be quoted, a quoted field may hold commas,
/// doubled quotes and line breaks. A record's line is the line it starts on.
/// </summary>
internal static class CsvSource
{
    public static IEnumerable<SourceRecord> Read(string path, FieldMapping mapping, CancellationToken cancellationToken)
    {
        using var reader = new Utf8LineReader(path);
        var parser = new RecordParser();
        Dictionary<string, int>? header = null;
        while (reader.TryReadLine(out var bytes))
        {
            if ((reader.LineNumber & 0x3FF) == 0) cancellationToken.ThrowIfCancellationRequested();
            if (!Utf8LineReader.TryDecode(bytes.Span, out var text, out var utf8Error))
            {
                var line = parser.InRecord ? parser.StartLine : reader.LineNumber;
                parser.Reset();
                if (header is null) throw new DataFormatException(path, reader.LineNumber, "header: " + utf8Error);
                yield return SourceRecord.Bad(line, $"line {reader.LineNumber}: {utf8Error}");
                continue;
            }
            if (!parser.InRecord && text.Length == 0) continue;
            var status = parser.Feed(text, reader.LineNumber);
            if (status == RecordParser.Status.NeedMore) continue;
            var start = parser.StartLine;
            if (status == RecordParser.Status.Error)
            {
                var error = parser.Error!;
                parser.Reset();
                if (header is null) throw new DataFormatException(path, start, "header: " + error);
                yield return SourceRecord.Bad(start, error);
                continue;
            }
            var fields = parser.TakeFields();
            if (header is null)
            {
                header = BuildHeader(path, start, fields, mapping);
                continue;
            }
            if (fields.Count != header.Count)
            {
                yield return SourceRecord.Bad(start, $"record has {fields.Count} fields; expected {header.Count} as in the header.");
                continue;
            }
            yield return mapping.Map(start, name => header.TryGetValue(name, out var i) ? FieldMapping.Field.Of(fields[i]) : FieldMapping.Field.Missing);
        }
        if (parser.InRecord)
        {
            if (header is null) throw new DataFormatException(path, parser.StartLine, "header: quoted field is not closed before the end of the file.");
            yield return SourceRecord.Bad(parser.StartLine, "quoted field is not closed before the end of the file; expected a closing '\"'.");
        }
        if (header is null) throw new DataFormatException(path, null, "file is empty; expected a header row naming the columns.");
    }

    private static Dictionary<string, int> BuildHeader(string path, long line, List<string> fields, FieldMapping mapping)
    {
        var header = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < fields.Count; i++)
            if (!header.TryAdd(fields[i].Trim(), i))
                throw new DataFormatException(path, line, $"header names column '{fields[i]}' twice; expected unique column names.");
        foreach (var name in mapping.FieldNames)
            if (!header.ContainsKey(name))
                throw new DataFormatException(path, line, $"header has no column '{name}'; found {string.Join(", ", header.Keys.Select(k => $"'{k}'"))}.");
        return header;
    }

    /// <summary>A CSV record assembled from one or more physical lines.</summary>
    private sealed class RecordParser
    {
        public enum Status { Complete, NeedMore, Error }

        private readonly StringBuilder field = new();
        private List<string> fields = [];
        private bool inQuotes;
        private bool afterQuote;

        public bool InRecord { get; private set; }
        public long StartLine { get; private set; }
        public string? Error { get; private set; }

        public Status Feed(string line, long lineNumber)
        {
            if (!InRecord)
            {
                InRecord = true;
                StartLine = lineNumber;
            }
            else
            {
                field.Append('\n'); // the line break inside a quoted field
            }
            for (var i = 0; i < line.Length; i++)
            {
                var c = line[i];
                if (inQuotes)
                {
                    if (c != '"') field.Append(c);
                    else if (i + 1 < line.Length && line[i + 1] == '"') { field.Append('"'); i++; }
                    else { inQuotes = false; afterQuote = true; }
                }
                else if (c == ',')
                {
                    EndField();
                }
                else if (afterQuote)
                {
                    Error = $"unexpected '{c}' after a closing quote (line {lineNumber}, column {i + 1}); expected ',' or the end of the line.";
                    return Status.Error;
                }
                else if (c == '"' && field.Length == 0)
                {
                    inQuotes = true;
                }
                else
                {
                    field.Append(c);
                }
            }
            if (inQuotes) return Status.NeedMore;
            EndField();
            return Status.Complete;
        }

        private void EndField()
        {
            fields.Add(field.ToString());
            field.Clear();
            afterQuote = false;
        }

        public List<string> TakeFields()
        {
            var taken = fields;
            fields = [];
            InRecord = false;
            return taken;
        }

        public void Reset()
        {
            fields = [];
            field.Clear();
            inQuotes = afterQuote = InRecord = false;
            Error = null;
        }
    }
}
