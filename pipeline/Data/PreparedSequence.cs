using System.Text.Json.Serialization;

namespace Forgetless.Data;

/// <summary>
/// One row of train.parquet / validation.parquet: a training sequence of one source and kind. Documented in
/// docs/prepare.md; read it with <c>ParquetSerializer.DeserializeAsync&lt;PreparedSequence&gt;</c> one row group at a time.
/// </summary>
public sealed class PreparedSequence
{
    internal const string TextColumn = "text";

    /// <summary>Name of the input source the documents came from.</summary>
    [JsonPropertyName("source")] public string Source { get; set; } = "";

    /// <summary><c>task</c>, <c>replay</c> or <c>generated</c>.</summary>
    [JsonPropertyName("kind")] public string Kind { get; set; } = "";

    /// <summary>Token ids; packed documents each end with eos; padded to the sequence length with the pad id.</summary>
    [JsonPropertyName("input_ids")] public int[] InputIds { get; set; } = [];

    /// <summary>True where the token is a training target: response tokens and eos of instruction rows, all but bos of plain text, never padding.</summary>
    [JsonPropertyName("loss_mask")] public bool[] LossMask { get; set; } = [];

    /// <summary>1-based document number within the sequence for each token; 0 for padding. Restrict attention to equal ids.</summary>
    [JsonPropertyName("segment_ids")] public int[] SegmentIds { get; set; } = [];

    /// <summary>Tokens that are not padding.</summary>
    [JsonPropertyName("length")] public int Length { get; set; }

    /// <summary>The original text of each document (prompt followed by response for instruction rows), in segment order.</summary>
    [JsonPropertyName(TextColumn)] public List<string> Text { get; set; } = [];
}

/// <summary>File names of a prepare stage's output folder.</summary>
public static class PreparedDataset
{
    public const string TrainFileName = "train.parquet";
    public const string ValidationFileName = "validation.parquet";
    public const string StatsFileName = "stats.json";

    /// <summary>The train.parquet of a prepared-dataset folder, or the path itself when it names a .parquet file.</summary>
    public static string TrainFile(string path) =>
        Directory.Exists(path) || !path.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase) ? Path.Combine(path, TrainFileName) : path;
}
