using Forgetless.Data.Sources;

namespace Forgetless.Data;

/// <summary>One input source as the engine tracks it across both passes.</summary>
internal sealed class SourceState
{
    public required int Index { get; init; }
    public required string Name { get; init; }
    public required string Path { get; init; }
    public required SourceFormat Format { get; init; }
    public required RowKind Kind { get; init; }
    public required double Weight { get; init; }
    public required FieldMapping Mapping { get; init; }

    /// <summary>Train tokens per seeded sampling bucket, from the first pass.</summary>
    public long[] Histogram { get; } = new long[ReplayMixPlan.Buckets];
    public long AvailableTrainTokens { get; set; }
    public SourceSelection Selection { get; set; } = new(0, 0, false, 0);
    public SourceStats Stats { get; } = new();

    /// <summary>Rows of a source are numbered across passes alike; the position names the first of a set of duplicates.</summary>
    public long Position(long ordinal) => ((long)Index << 40) | ordinal;

    public IEnumerable<SourceRecord> Read(CancellationToken cancellationToken) => Format switch
    {
        SourceFormat.Jsonl => JsonLinesSource.Read(Path, Mapping, cancellationToken),
        SourceFormat.Csv => CsvSource.Read(Path, Mapping, cancellationToken),
        SourceFormat.Parquet => ParquetSource.Read(Path, Mapping, cancellationToken),
        SourceFormat.Text => TextSource.Read(Path, cancellationToken),
        SourceFormat.PreparedDataset => PreparedDatasetSource.Read(Path, cancellationToken),
        _ => throw new InvalidOperationException($"Unresolved source format {Format}."),
    };

    public static SourceFormat ResolveFormat(DataSourceOptions source, string path, bool isReplay)
    {
        if (source.Format != SourceFormat.Auto) return source.Format;
        if (Directory.Exists(path))
            return isReplay ? SourceFormat.PreparedDataset
                : throw new DataFormatException(path, null, "is a folder; expected a jsonl, csv, parquet or txt file.");
        // "x.txt.gz" and "x.jsonl.gz" are read through gzip; the format is the one before ".gz".
        string name = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? path[..^3] : path;
        return System.IO.Path.GetExtension(name).ToLowerInvariant() switch
        {
            ".jsonl" or ".ndjson" or ".json" => SourceFormat.Jsonl,
            ".csv" => SourceFormat.Csv,
            ".parquet" => SourceFormat.Parquet,
            ".txt" or ".text" => SourceFormat.Text,
            var ext => throw new DataFormatException(path, null,
                $"cannot tell the format from the extension '{ext}'; set format to jsonl, csv, parquet, text{(isReplay ? " or preparedDataset" : "")}."),
        };
    }

    public static string KindName(RowKind kind) => kind switch
    {
        RowKind.Task => "task",
        RowKind.Replay => "replay",
        RowKind.Generated => "generated",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };
}
