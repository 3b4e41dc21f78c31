namespace Forgetless.Data.Sources;

/// <summary>Plain text: every non-blank line is one document (one sentence or paragraph per line).</summary>
internal static class TextSource
{
    public static IEnumerable<SourceRecord> Read(string path, CancellationToken cancellationToken)
    {
        using var reader = new Utf8LineReader(path);
        while (reader.TryReadLine(out var bytes))
        {
            if ((reader.LineNumber & 0x3FF) == 0) cancellationToken.ThrowIfCancellationRequested();
            if (JsonLinesSource.IsBlank(bytes.Span)) continue;
            yield return Utf8LineReader.TryDecode(bytes.Span, out var text, out var error)
                ? SourceRecord.Plain(reader.LineNumber, text)
                : SourceRecord.Bad(reader.LineNumber, error!);
        }
    }
}
