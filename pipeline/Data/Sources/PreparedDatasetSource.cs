using Parquet;
using Parquet.Serialization;

namespace Forgetless.Data.Sources;

/// <summary>
/// Replay from an earlier prepare run: the original texts of its train.parquet, each as a plain document
/// (loss on every token; an earlier prompt/response split is not kept). Row numbers are 1-based sequence rows.
/// </summary>
internal static class PreparedDatasetSource
{
    public static IEnumerable<SourceRecord> Read(string path, CancellationToken cancellationToken)
    {
        var file = PreparedDataset.TrainFile(path);
        if (!File.Exists(file))
            throw new DataFormatException(path, null, $"has no {PreparedDataset.TrainFileName}; expected the output folder of an earlier prepare.");
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        int groups;
        var reader = ParquetSource.Open(file, stream, cancellationToken);
        try
        {
            ParquetSource.Find(file, reader.Schema, "source"); // a cheap check that this is a prepared dataset
            if (!reader.Schema.GetDataFields().Any(f => f.Path.FirstPart == PreparedSequence.TextColumn))
                throw new DataFormatException(file, null, $"has no '{PreparedSequence.TextColumn}' list column; expected a prepared dataset.");
            groups = reader.RowGroupCount;
        }
        finally
        {
            reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        long row = 0;
        for (var g = 0; g < groups; g++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            stream.Position = 0;
            var rows = ParquetSerializer.DeserializeAsync<PreparedSequence>(stream, rowGroupIndex: g, cancellationToken: cancellationToken)
                .GetAwaiter().GetResult().Data;
            foreach (var sequence in rows)
            {
                row++;
                foreach (var text in sequence.Text)
                    yield return string.IsNullOrWhiteSpace(text)
                        ? SourceRecord.Bad(row, $"'{PreparedSequence.TextColumn}' holds an empty document; expected non-empty text.")
                        : SourceRecord.Plain(row, text);
            }
        }
    }
}
