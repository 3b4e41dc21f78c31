using Forgetless.Data;
using Forgetless.Model;
using Forgetless.Training;
using Parquet.Serialization;
using static TorchSharp.torch;

namespace Forgetless.FineTuning;

/// <summary>
/// One training row of a prepared Parquet file: the token ids, which of them are targets, its kind, and which document
/// each token belongs to (prepare's <c>segment_ids</c>: 1, 2, … and 0 for padding; null: the row is one document).
/// </summary>
public sealed record PreparedRow(int[] InputIds, bool[] LossMask, int Length, string Kind, int[]? SegmentIds = null)
{
    /// <summary>Rows that stand for the old abilities (replay text, or text the base model generated).</summary>
    public bool IsReplay => Kind is "replay" or "generated";

    /// <summary>Whether the row packs more than one document (attention and positions then keep to each document).</summary>
    public bool IsPacked => SegmentIds is { } s && Length > 0 && s[Length - 1] != s[0];

    /// <summary>
    /// Whether token <paramref name="t"/> is trained on, predicted from the tokens before it: its loss_mask is set and
    /// token t − 1 is of the same document. The first token of a packed document is not: its own document has nothing
    /// before it to predict it from (HF's packing collator masks that label too), so a packed row's loss is the sum of
    /// its documents' losses alone.
    /// </summary>
    public bool IsTarget(int t) => t > 0 && t < Length && LossMask[t] && (SegmentIds is not { } s || s[t] == s[t - 1]);
}

/// <summary>The prepare stage's rows as a training stage reads them.</summary>
/// <param name="Train">Every row of train.parquet, in file order.</param>
/// <param name="ValidationAll">Every row of validation.parquet.</param>
/// <param name="Validation">The validation rows scored for the task loss (<see cref="LossProbe.TaskRows"/>).</param>
public sealed record TrainingData(IReadOnlyList<PreparedRow> Train, IReadOnlyList<PreparedRow> ValidationAll, IReadOnlyList<PreparedRow> Validation)
{
    public static TrainingData Read(string prepareOutput, int validationSequences, CancellationToken cancellationToken)
    {
        var train = PreparedBatches.Read(Path.Combine(prepareOutput, PreparedDataset.TrainFileName), cancellationToken: cancellationToken);
        var validation = PreparedBatches.Read(Path.Combine(prepareOutput, PreparedDataset.ValidationFileName), cancellationToken: cancellationToken);
        return new TrainingData(train, validation, LossProbe.TaskRows(validation, validationSequences));
    }
}

/// <summary>
/// A batch as tensors: inputs [B, W] (W = longest row in the batch; right padding), next-token targets [B, W − 1] with a float target mask, which rows are replay, and — when a row packs several
/// documents — their <see cref="TokenLayout"/>. Dispose, or let a scope do it.
/// </summary>
public sealed class TokenBatch(Tensor inputs, Tensor targets, Tensor targetMask, Tensor isReplay, TokenLayout? layout,
    long tokens, long targetTokens, int[] replayRows) : IDisposable
{
    public Tensor Inputs { get; } = inputs;
    public Tensor Targets { get; } = targets;
    public Tensor TargetMask { get; } = targetMask;
    public Tensor IsReplay { get; } = isReplay;
    /// <summary>Packed documents' positions and block-diagonal attention; null when every row is one document.</summary>
    public TokenLayout? Layout { get; } = layout;
    public long Tokens { get; } = tokens;
    public long TargetTokens { get; } = targetTokens;

    /// <summary>Indices of the replay rows, known on the host (no device read to find them).</summary>
    public IReadOnlyList<int> ReplayRows { get; } = replayRows;

    /// <summary>The indices of the replay rows as an int64 tensor on the batch's device.</summary>
    public Tensor ReplayIndices() => tensor(ReplayRows.Select(i => (long)i).ToArray(), device: Inputs.device);

    /// <summary>
    /// Rows as a batch. Logits at position t score the token at t + 1 where <see cref="PreparedRow.IsTarget"/> (its
    /// loss_mask is set — the mask marks target tokens themselves, prepare's convention — and it continues t's document).
    /// The tensors, the layout's included, are made on <paramref name="device"/> (the CPU when null).
    /// </summary>
    public static TokenBatch Of(IReadOnlyList<PreparedRow> rows, Device? device = null)
    {
        int width = Math.Max(2, rows.Max(r => r.Length));
        int b = rows.Count;
        var ids = new long[b * width];
        var targets = new long[b * (width - 1)];
        var mask = new float[b * (width - 1)];
        var replay = new bool[b];
        bool packed = rows.Any(r => r.IsPacked);
        var segments = packed ? new long[b * width] : null;
        long tokens = 0, targetTokens = 0;
        for (int i = 0; i < b; i++)
        {
            var row = rows[i];
            replay[i] = row.IsReplay;
            tokens += row.Length;
            for (int t = 0; t < row.Length && t < width; t++)
            {
                ids[i * width + t] = row.InputIds[t];
                if (segments is not null) segments[i * width + t] = row.SegmentIds?[t] ?? 1;
            }
            for (int t = 0; t + 1 < row.Length; t++)
            {
                targets[i * (width - 1) + t] = row.InputIds[t + 1];
                if (row.IsTarget(t + 1)) { mask[i * (width - 1) + t] = 1; targetTokens++; }
            }
        }
        TokenLayout? layout = null;
        if (segments is not null)
        {
            using var segmentIds = tensor(segments, [b, width], device: device);
            layout = TokenLayout.Documents(segmentIds);
        }
        return new TokenBatch(tensor(ids, [b, width], device: device), tensor(targets, [b, width - 1], device: device),
            tensor(mask, [b, width - 1], device: device), tensor(replay, device: device), layout,
            tokens, targetTokens, Enumerable.Range(0, b).Where(i => replay[i]).ToArray());
    }

    /// <summary>
    /// The model's logits [B, W, V] for this batch: each packed document attends within itself from position 0; plain
    /// rows run causally without a mask (their right padding comes after every real token, which no real token sees).
    /// </summary>
    public Tensor Logits(CausalLM model) => model.Forward(Inputs, layout: Layout);

    /// <summary>The model's final hidden states [B, W, D] for this batch, laid out as <see cref="Logits"/>.</summary>
    public Tensor Hidden(CausalLM model) => model.ForwardHidden(Inputs, Layout);

    public void Dispose()
    {
        Inputs.Dispose(); Targets.Dispose(); TargetMask.Dispose(); IsReplay.Dispose(); Layout?.Dispose();
    }
}

/// <summary>
/// The rows of a prepared Parquet file served as token-budget batches in a seeded shuffled order. The order is
/// <see cref="SeededSampler.Permutation"/> of (seed, epoch); the position in it is the whole state, saved in each
/// checkpoint, so a resumed run sees exactly the batches an uninterrupted one sees. The file is read one row group
/// at a time; only token ids, masks, kinds and the segment ids of packed rows are kept (5 to 9 bytes per token), not the text.
/// </summary>
public sealed class PreparedBatches
{
    private readonly IReadOnlyList<PreparedRow> rows;
    private readonly int tokensPerBatch;
    private int[] order;

    public PreparedBatches(IReadOnlyList<PreparedRow> rows, int tokensPerBatch, long seed, SamplerState? resume = null)
    {
        if (rows.Count == 0) throw new InvalidDataException("the prepared training file has no rows");
        this.rows = rows;
        this.tokensPerBatch = tokensPerBatch;
        Seed = seed;
        (Epoch, Position) = resume is null ? (0, 0) : (resume.Epoch, resume.Position);
        if (resume is not null && (resume.Count != rows.Count || resume.Seed != seed))
            throw new InvalidOperationException($"checkpoint sampler state {resume} does not match {rows.Count} rows and seed {seed}");
        order = SeededSampler.Permutation(rows.Count, seed, Epoch);
    }

    public long Seed { get; }
    public int Epoch { get; private set; }
    public int Position { get; private set; }
    public IReadOnlyList<PreparedRow> Rows => rows;

    public SamplerState State => new(rows.Count, Seed, Epoch, Position);

    /// <summary>Continues from a saved <see cref="State"/>.</summary>
    public void Restore(SamplerState state)
    {
        if (state.Count != rows.Count || state.Seed != Seed || state.Position < 0 || state.Position > rows.Count)
            throw new InvalidOperationException($"checkpoint sampler state {state} does not match {rows.Count} rows and seed {Seed}");
        (Epoch, Position) = (state.Epoch, state.Position);
        order = SeededSampler.Permutation(rows.Count, Seed, Epoch);
    }

    /// <summary>Whole rows in shuffled order while their non-padding tokens fit the budget (always at least one row).</summary>
    public IReadOnlyList<PreparedRow> Next()
    {
        var batch = new List<PreparedRow>();
        long tokens = 0;
        while (true)
        {
            if (Position == order.Length)
            {
                Epoch++;
                Position = 0;
                order = SeededSampler.Permutation(rows.Count, Seed, Epoch);
            }
            var row = rows[order[Position]];
            if (batch.Count > 0 && tokens + row.Length > tokensPerBatch) break;
            batch.Add(row);
            tokens += row.Length;
            Position++;
            if (tokens >= tokensPerBatch) break;
        }
        return batch;
    }

    /// <summary>Reads the rows of a prepared Parquet file (see docs/prepare.md), at most <paramref name="limit"/>.</summary>
    public static List<PreparedRow> Read(string parquetPath, int limit = int.MaxValue, CancellationToken cancellationToken = default)
    {
        if (!File.Exists(parquetPath)) throw new FileNotFoundException($"{parquetPath}: prepared data not found; run the prepare stage first", parquetPath);
        var result = new List<PreparedRow>();
        using var stream = File.OpenRead(parquetPath);
        var reader = Parquet.ParquetReader.CreateAsync(stream).GetAwaiter().GetResult();
        int groups = reader.RowGroupCount;
        reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
        {
            for (int g = 0; g < groups && result.Count < limit; g++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                stream.Position = 0;
                var group = ParquetSerializer.DeserializeAsync<PreparedSequence>(stream, rowGroupIndex: g, cancellationToken: cancellationToken)
                    .GetAwaiter().GetResult().Data;
                foreach (var s in group)
                {
                    if (result.Count >= limit) break;
                    if (s.InputIds.Length != s.LossMask.Length || s.Length > s.InputIds.Length || s.Length < 0)
                        throw new InvalidDataException($"{parquetPath}: row {result.Count + 1} has {s.InputIds.Length} ids, {s.LossMask.Length} mask values and length {s.Length}");
                    if (s.SegmentIds.Length != 0 && s.SegmentIds.Length != s.InputIds.Length)
                        throw new InvalidDataException($"{parquetPath}: row {result.Count + 1} has {s.InputIds.Length} ids but {s.SegmentIds.Length} segment ids");
                    // Segment ids are kept only for rows that pack several documents (a row of one document needs none).
                    bool packed = s.SegmentIds.Length > 0 && s.Length > 0 && s.SegmentIds[s.Length - 1] != s.SegmentIds[0];
                    result.Add(new PreparedRow(s.InputIds, s.LossMask, s.Length, s.Kind, packed ? s.SegmentIds : null));
                }
            }
        }
        return result;
    }
}
