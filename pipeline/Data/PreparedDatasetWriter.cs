using Parquet;
using Parquet.Schema;

namespace Forgetless.Data;

/// <summary>
/// Streams <see cref="PreparedSequence"/> rows into a Parquet file, one row group per
/// <see cref="PrepareOptions.RowGroupSize"/> sequences (or sooner past 64 MiB of buffered text).
/// </summary>
internal sealed class PreparedDatasetWriter : IAsyncDisposable
{
    private const long MaxBufferedTextChars = 32L << 20;

    private static readonly DataField SourceField = new DataField<string>("source");
    private static readonly DataField KindField = new DataField<string>("kind");
    private static readonly ListField InputIdsField = new("input_ids", new DataField<int>("element"));
    private static readonly ListField LossMaskField = new("loss_mask", new DataField<bool>("element"));
    private static readonly ListField SegmentIdsField = new("segment_ids", new DataField<int>("element"));
    private static readonly DataField LengthField = new DataField<int>("length");
    private static readonly ListField TextField = new(PreparedSequence.TextColumn, new DataField<string>("element"));
    private static readonly ParquetSchema Schema = new(SourceField, KindField, InputIdsField, LossMaskField, SegmentIdsField, LengthField, TextField);

    private readonly Stream stream;
    private readonly ParquetWriter writer;
    private readonly int rowGroupSize;
    private readonly List<PreparedSequence> pending = [];
    private long pendingTextChars;
    private bool completed;

    private PreparedDatasetWriter(Stream stream, ParquetWriter writer, int rowGroupSize)
    {
        this.stream = stream;
        this.writer = writer;
        this.rowGroupSize = rowGroupSize;
    }

    public long Rows { get; private set; }

    public static async Task<PreparedDatasetWriter> CreateAsync(string path, int rowGroupSize, IReadOnlyDictionary<string, string> metadata, CancellationToken cancellationToken)
    {
        var stream = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16);
        var writer = await ParquetWriter.CreateAsync(Schema, stream, new ParquetOptions { CompressionMethod = CompressionMethod.Snappy }, cancellationToken: cancellationToken);
        writer.CustomMetadata = metadata.ToDictionary();
        return new PreparedDatasetWriter(stream, writer, rowGroupSize);
    }

    public async ValueTask AddAsync(PreparedSequence sequence, CancellationToken cancellationToken)
    {
        pending.Add(sequence);
        Rows++;
        foreach (var t in sequence.Text) pendingTextChars += t.Length;
        if (pending.Count >= rowGroupSize || pendingTextChars >= MaxBufferedTextChars)
            await FlushAsync(cancellationToken);
    }

    private async Task FlushAsync(CancellationToken cancellationToken)
    {
        if (pending.Count == 0) return;
        using (var group = writer.CreateRowGroup())
        {
            await group.WriteAsync(SourceField, pending.Select(s => s.Source).ToArray(), null);
            await group.WriteAsync(KindField, pending.Select(s => s.Kind).ToArray(), null);
            await WriteListAsync(group, InputIdsField, pending.Select(s => s.InputIds), cancellationToken);
            await WriteListAsync(group, LossMaskField, pending.Select(s => s.LossMask), cancellationToken);
            await WriteListAsync(group, SegmentIdsField, pending.Select(s => s.SegmentIds), cancellationToken);
            await group.WriteAsync<int>(LengthField, pending.Select(s => s.Length).ToArray().AsMemory(), null, null, cancellationToken);
            var texts = pending.SelectMany(s => s.Text).ToArray();
            await group.WriteAsync((DataField)TextField.Item, texts, RepetitionLevels(pending.Select(s => s.Text.Count), texts.Length));
            group.CompleteValidate();
        }
        pending.Clear();
        pendingTextChars = 0;
    }

    /// <summary>Lists are never empty here, so every value is defined and a new row starts at repetition level 0.</summary>
    private static async Task WriteListAsync<T>(ParquetRowGroupWriter group, ListField field, IEnumerable<T[]> lists, CancellationToken cancellationToken)
        where T : struct
    {
        var item = (DataField)field.Item;
        var values = lists.SelectMany(l => l).ToArray();
        var definition = new int[values.Length];
        Array.Fill(definition, item.MaxDefinitionLevel);
        await group.WriteAllPartsAsync<T>(item, values.AsMemory(), definition.AsMemory(), RepetitionLevels(lists.Select(l => l.Length), values.Length), cancellationToken);
    }

    private static int[] RepetitionLevels(IEnumerable<int> counts, int total)
    {
        var levels = new int[total];
        var at = 0;
        foreach (var count in counts)
        {
            if (count == 0) throw new InvalidOperationException("A prepared sequence has an empty list column.");
            Array.Fill(levels, 1, at + 1, count - 1);
            at += count;
        }
        return levels;
    }

    /// <summary>Writes the last row group and the footer.</summary>
    public async Task CompleteAsync(CancellationToken cancellationToken)
    {
        await FlushAsync(cancellationToken);
        completed = true;
        await writer.DisposeAsync();
        await stream.FlushAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (!completed) await writer.DisposeAsync();
        completed = true;
        await stream.DisposeAsync();
    }
}
