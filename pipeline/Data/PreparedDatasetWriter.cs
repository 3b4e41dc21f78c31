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
    private int[] ids = [], segments = [], definitionLevels = [], repetitionLevels = [];
    private bool[] mask = [];
    private int bufferSeqLen;

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
        var seqLen = pending[0].InputIds.Length;
        var values = pending.Count * seqLen;
        EnsureBuffers(values, seqLen);
        for (var r = 0; r < pending.Count; r++)
        {
            var s = pending[r];
            if (s.InputIds.Length != seqLen || s.LossMask.Length != seqLen || s.SegmentIds.Length != seqLen)
                throw new InvalidOperationException("Prepared sequences in one file must all have the sequence length.");
            s.InputIds.CopyTo(ids, r * seqLen);
            s.LossMask.CopyTo(mask, r * seqLen);
            s.SegmentIds.CopyTo(segments, r * seqLen);
        }
        var levels = (Definition: definitionLevels.AsMemory(0, values), Repetition: repetitionLevels.AsMemory(0, values));
        using (var group = writer.CreateRowGroup())
        {
            await group.WriteAsync(SourceField, pending.Select(s => s.Source).ToArray(), null);
            await group.WriteAsync(KindField, pending.Select(s => s.Kind).ToArray(), null);
            await group.WriteAllPartsAsync<int>((DataField)InputIdsField.Item, ids.AsMemory(0, values), levels.Definition, levels.Repetition, cancellationToken);
            await group.WriteAllPartsAsync<bool>((DataField)LossMaskField.Item, mask.AsMemory(0, values), levels.Definition, levels.Repetition, cancellationToken);
            await group.WriteAllPartsAsync<int>((DataField)SegmentIdsField.Item, segments.AsMemory(0, values), levels.Definition, levels.Repetition, cancellationToken);
            await group.WriteAsync<int>(LengthField, pending.Select(s => s.Length).ToArray().AsMemory(), null, null, cancellationToken);
            var texts = pending.SelectMany(s => s.Text).ToArray();
            await group.WriteAsync((DataField)TextField.Item, texts, TextRepetitionLevels(texts.Length));
            group.CompleteValidate();
        }
        pending.Clear();
        pendingTextChars = 0;
    }

    /// <summary>
    /// Token lists all have the sequence length, so their levels are the same for every row group: every value is
    /// defined, and a row starts (repetition level 0) every seqLen values. The buffers are reused between row groups.
    /// </summary>
    private void EnsureBuffers(int values, int seqLen)
    {
        if (ids.Length >= values && bufferSeqLen == seqLen) return;
        var capacity = Math.Max(values, rowGroupSize * seqLen);
        ids = new int[capacity];
        mask = new bool[capacity];
        segments = new int[capacity];
        definitionLevels = new int[capacity];
        Array.Fill(definitionLevels, ((DataField)InputIdsField.Item).MaxDefinitionLevel);
        repetitionLevels = new int[capacity];
        Array.Fill(repetitionLevels, 1);
        for (var i = 0; i < capacity; i += seqLen) repetitionLevels[i] = 0;
        bufferSeqLen = seqLen;
    }

    private int[] TextRepetitionLevels(int total)
    {
        var levels = new int[total];
        var at = 0;
        foreach (var s in pending)
        {
            if (s.Text.Count == 0) throw new InvalidOperationException("A prepared sequence has no document text.");
            Array.Fill(levels, 1, at + 1, s.Text.Count - 1);
            at += s.Text.Count;
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
