using Forgetless.Model.Devices;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Forgetless.FineTuning;
using Forgetless.Training.Terms;
using Forgetless.Model;
using Forgetless.Progress;
using Forgetless.Training;
using Microsoft.Extensions.Logging;
using Parquet;
using Parquet.Serialization;
using static TorchSharp.torch;

namespace Forgetless.Distill;

/// <summary>
/// One row of <c>teacher_topk.parquet</c>: the teacher's soft targets for one prepared row, at the scored target
/// positions only. The list columns are row-major [position, k]: entry j·k + i is the i-th most likely token at
/// <c>positions[j]</c>. A position t is a next-token position: the logits at t score token t + 1 (where the row's
/// loss_mask is true).
/// </summary>
public sealed class TeacherTopKRow
{
    /// <summary>0-based row number in the prepared train.parquet.</summary>
    [JsonPropertyName("row")] public int Row { get; set; }
    [JsonPropertyName("positions")] public int[] Positions { get; set; } = [];
    [JsonPropertyName("topk_ids")] public int[] TopkIds { get; set; } = [];
    /// <summary>log softmax(teacher logits / T) of the top-k ids, in nats.</summary>
    [JsonPropertyName("topk_logprobs")] public float[] TopkLogprobs { get; set; } = [];
    /// <summary>The teacher's probability (at T) of every token outside the top-k: one per position.</summary>
    [JsonPropertyName("tail_mass")] public float[] TailMass { get; set; } = [];
}

/// <summary>What the teacher pass did (teacher_pass.json in the cache folder, and the stage's summary).</summary>
public sealed record TeacherPassInfo
{
    public required string Key { get; init; }
    public required string Teacher { get; init; }
    public required int TopK { get; init; }
    public required double Temperature { get; init; }
    public required int Rows { get; init; }
    public required long Positions { get; init; }
    /// <summary>Tokens the teacher read (non-padding tokens of the rows).</summary>
    public required long Tokens { get; init; }
    public required double Seconds { get; init; }
    /// <summary>
    /// Mean over positions of the teacher's probability outside its top-k (at T): the share of the distribution the
    /// cached targets collapse into one bucket. The student's distribution inside that bucket is not constrained, so
    /// a large value means a larger k (or a lower T) for the distillation to reach the full KL.
    /// </summary>
    public double MeanTailMass { get; init; }
    public double TokensPerSecond => Seconds > 0 ? Math.Round(Tokens / Seconds, 1) : 0;
    /// <summary>True when this run found the pass in the cache and scored nothing.</summary>
    [JsonIgnore] public bool Reused { get; init; }
    [JsonIgnore] public string Directory { get; init; } = "";
}

/// <summary>
/// The cached teacher pass: the teacher scores the chosen replay rows once and keeps, per target token, its top-k
/// log-probabilities at temperature T plus the remaining mass. Cached under <c>&lt;run root&gt;/.cache/teacher/&lt;key&gt;/</c>
/// with the key a SHA-256 of the teacher folder's files, the rows (index, ids, loss mask, documents), k and T — so another
/// teacher, other rows, another k or T make a new pass and the same ones reuse it. The folder appears atomically
/// (written beside, then renamed) so an interrupted pass leaves nothing that looks complete.
/// </summary>
public static class TeacherPass
{
    public const string FileName = "teacher_topk.parquet";
    public const string InfoFileName = "teacher_pass.json";
    // v3: packed rows are scored document by document (block-diagonal attention, positions restarting per document).
    private const string FormatVersion = "forgetless.teacher-topk.v3";


    public static string Key(string teacherDirectory, IReadOnlyList<(int Index, PreparedRow Row)> rows, int k, double temperature)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Text(string s) => hash.AppendData(Encoding.UTF8.GetBytes(s + "\0"));
        Text(FormatVersion);
        Text(Runs.FileHashes.DigestOf(teacherDirectory));
        Text(k.ToString(CultureInfo.InvariantCulture));
        Text(temperature.ToString("R", CultureInfo.InvariantCulture));
        foreach (var (index, row) in rows)
        {
            hash.AppendData(BitConverter.GetBytes(index));
            hash.AppendData(BitConverter.GetBytes(row.Length));
            foreach (var id in row.InputIds.AsSpan(0, row.Length)) hash.AppendData(BitConverter.GetBytes(id));
            foreach (var m in row.LossMask.AsSpan(0, row.Length)) hash.AppendData([m ? (byte)1 : (byte)0]);
            if (row.SegmentIds is { } segments)
                foreach (var s in segments.AsSpan(0, row.Length)) hash.AppendData(BitConverter.GetBytes(s));
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>
    /// The cache folder for these rows and this teacher (<paramref name="teacher"/> loaded from
    /// <paramref name="teacherDirectory"/>), scoring them first when it is missing.
    /// </summary>
    public static TeacherPassInfo Ensure(string cacheDirectory, string teacherDirectory, CausalLM teacher,
        IReadOnlyList<(int Index, PreparedRow Row)> rows, int k, double temperature, int batchRows, ILogger logger, CancellationToken cancellationToken)
    {
        string key = Key(teacherDirectory, rows, k, temperature);
        string folder = Path.Combine(cacheDirectory, "teacher", key);
        if (File.Exists(Path.Combine(folder, InfoFileName)) && File.Exists(Path.Combine(folder, FileName)))
        {
            var cached = Runs.OutputJson.Read<TeacherPassInfo>(Path.Combine(folder, InfoFileName));
            logger.LogInformation("distill: teacher pass from cache {Folder} ({Rows} rows, top-{K})", folder, cached.Rows, cached.TopK);
            return cached with { Reused = true, Directory = folder };
        }

        var clock = Stopwatch.StartNew();
        var scored = Score(teacher, rows, k, temperature, batchRows, cancellationToken);
        double seconds = clock.Elapsed.TotalSeconds;
        var info = new TeacherPassInfo
        {
            Key = key, Teacher = teacherDirectory, TopK = Math.Min(k, teacher.Config.VocabSize), Temperature = temperature, Rows = scored.Count,
            Positions = scored.Sum(r => (long)r.Positions.Length), Tokens = rows.Sum(r => (long)r.Row.Length), Seconds = Math.Round(seconds, 3),
            MeanTailMass = Math.Round(scored.SelectMany(r => r.TailMass).DefaultIfEmpty(0).Average(m => (double)m), 5),
        };
        string temp = Path.Combine(cacheDirectory, "teacher", $".tmp-{Guid.NewGuid():N}");
        System.IO.Directory.CreateDirectory(temp);
        using (var stream = File.Create(Path.Combine(temp, FileName)))
            ParquetSerializer.SerializeAsync(scored, stream, new ParquetOptions { RowGroupSize = 256 }, cancellationToken: cancellationToken).GetAwaiter().GetResult();
        File.WriteAllText(Path.Combine(temp, InfoFileName), Runs.OutputJson.Serialize(info));
        try
        {
            System.IO.Directory.Move(temp, folder);
        }
        catch (IOException) when (System.IO.Directory.Exists(folder))
        {
            System.IO.Directory.Delete(temp, recursive: true); // another run finished the same pass first
        }
        logger.LogInformation("distill: teacher pass scored {Rows} rows, {Tokens:N0} tokens in {Seconds:F1} s ({Rate:N0} tokens/s), " +
            "mean mass outside the top-{K}: {Tail:P1} → {Folder}", info.Rows, info.Tokens, seconds, info.TokensPerSecond, info.TopK, info.MeanTailMass, folder);
        return info with { Reused = false, Directory = folder };
    }

    /// <summary>The teacher's top-k at T for every target position of <paramref name="rows"/>.</summary>
    public static List<TeacherTopKRow> Score(CausalLM teacher, IReadOnlyList<(int Index, PreparedRow Row)> rows, int k, double temperature,
        int batchRows, CancellationToken cancellationToken)
    {
        k = Math.Min(k, teacher.Config.VocabSize);
        bool wasTraining = teacher.training;
        teacher.eval();
        var result = new List<TeacherTopKRow>(rows.Count);
        try
        {
            using var _ = no_grad();
            using var progress = new ProgressBar("distill teacher pass", rows.Count, "rows");
            foreach (var chunk in rows.Chunk(batchRows))
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                using var batch = TokenBatch.Of(chunk.Select(c => c.Row).ToList(), teacher.Device);
                long width = batch.Targets.shape[1];
                var logits = batch.Logits(teacher).narrow(1, 0, width);
                var (indices, logProbs, tail) = Distillation.TeacherTopKWithTail(logits, k, temperature);
                var ids = HostValues.Ints(indices);
                var lps = HostValues.Floats(logProbs);
                var tails = HostValues.Floats(tail);
                for (int b = 0; b < chunk.Length; b++)
                {
                    var (index, row) = chunk[b];
                    var positions = Enumerable.Range(0, Math.Max(0, row.Length - 1)).Where(t => row.IsTarget(t + 1)).ToArray();
                    var entry = new TeacherTopKRow
                    {
                        Row = index, Positions = positions,
                        TopkIds = new int[positions.Length * k], TopkLogprobs = new float[positions.Length * k], TailMass = new float[positions.Length],
                    };
                    for (int j = 0; j < positions.Length; j++)
                    {
                        long at = (b * width + positions[j]) * k;
                        Array.Copy(ids, at, entry.TopkIds, (long)j * k, k);
                        Array.Copy(lps, at, entry.TopkLogprobs, (long)j * k, k);
                        entry.TailMass[j] = tails[b * width + positions[j]];
                    }
                    result.Add(entry);
                }
                progress.Report(result.Count);
            }
        }
        finally
        {
            if (wasTraining) teacher.train();
        }
        return result;
    }

    public static List<TeacherTopKRow> Read(string folder, CancellationToken cancellationToken = default)
    {
        string path = Path.Combine(folder, FileName);
        using var stream = File.OpenRead(path);
        int groups;
        {
            var reader = ParquetReader.CreateAsync(stream, cancellationToken: cancellationToken).GetAwaiter().GetResult();
            groups = reader.RowGroupCount;
            reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        var rows = new List<TeacherTopKRow>();
        for (int g = 0; g < groups; g++)
        {
            stream.Position = 0;
            rows.AddRange(ParquetSerializer.DeserializeAsync<TeacherTopKRow>(stream, rowGroupIndex: g, cancellationToken: cancellationToken).GetAwaiter().GetResult().Data);
        }
        return rows;
    }
}

/// <summary>
/// The cached teacher as <see cref="ITeacherTargets"/>: looks up each prepared row's soft targets and takes the
/// distillation loss through <see cref="Distillation.TopKLoss"/>, the one implementation FineTune's kd shares.
/// </summary>
public sealed class CachedTeacherTargets : ITeacherTargets
{
    private readonly Dictionary<PreparedRow, TeacherTopKRow> targets = new(ReferenceEqualityComparer.Instance);

    public CachedTeacherTargets(IReadOnlyList<TeacherTopKRow> cached, IReadOnlyList<PreparedRow> trainRows, int k, double temperature)
    {
        K = k;
        Temperature = temperature;
        foreach (var row in cached)
        {
            if (row.Row < 0 || row.Row >= trainRows.Count)
                throw new InvalidDataException($"{TeacherPass.FileName}: row {row.Row} is outside train.parquet's {trainRows.Count} rows");
            if (row.TopkIds.Length != row.Positions.Length * k || row.TopkLogprobs.Length != row.Positions.Length * k || row.TailMass.Length != row.Positions.Length)
                throw new InvalidDataException($"{TeacherPass.FileName}: row {row.Row} has list lengths that do not match {row.Positions.Length} positions × top-{k}");
            targets[trainRows[row.Row]] = row;
        }
    }

    public int K { get; }
    public double Temperature { get; }
    public bool Covers(PreparedRow row) => targets.ContainsKey(row);

    public Tensor Loss(IReadOnlyList<PreparedRow> rows, Tensor studentLogits, KdOptions options)
    {
        if (options.Temperature != Temperature)
            throw new InvalidOperationException($"the cached teacher pass is at temperature {Temperature}, the loss asks for {options.Temperature}");
        using var scope = NewDisposeScope();
        var (indices, logProbs, tail, mask) = Dense(rows, (int)studentLogits.shape[1], studentLogits.device);
        return Distillation.TopKLoss(studentLogits, indices, logProbs, tail, mask, options).MoveToOuterDisposeScope();
    }

    /// <summary>The rows' targets as tensors [R, W, k], [R, W, k], [R, W] and a mask [R, W]; unscored positions hold finite fillers.</summary>
    public (Tensor Indices, Tensor LogProbs, Tensor Tail, Tensor Mask) Dense(IReadOnlyList<PreparedRow> rows, int width, Device? device = null)
    {
        int k = K;
        var ids = new long[rows.Count * width * k];
        var lps = new float[ids.Length];
        var tail = new float[rows.Count * width];
        var mask = new float[tail.Length];
        float filler = (float)-Math.Log(k + 1);
        for (int i = 0; i < ids.Length; i++) { ids[i] = i % k; lps[i] = filler; }
        Array.Fill(tail, 1f / (k + 1));
        for (int r = 0; r < rows.Count; r++)
        {
            if (!targets.TryGetValue(rows[r], out var t))
                throw new InvalidOperationException("distill: a replay row in the batch has no cached teacher targets");
            for (int j = 0; j < t.Positions.Length; j++)
            {
                int p = t.Positions[j];
                if (p >= width) continue;
                long at = ((long)r * width + p) * k;
                for (int i = 0; i < k; i++) { ids[at + i] = t.TopkIds[j * k + i]; lps[at + i] = t.TopkLogprobs[j * k + i]; }
                tail[r * width + p] = t.TailMass[j];
                mask[r * width + p] = 1;
            }
        }
        return (tensor(ids, [rows.Count, width, k], device: device), tensor(lps, [rows.Count, width, k], device: device),
            tensor(tail, [rows.Count, width], device: device), tensor(mask, [rows.Count, width], device: device));
    }
}
