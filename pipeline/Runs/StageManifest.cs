using System.Text.Json;
using System.Text.Json.Serialization;

namespace Forgetless.Runs;

/// <summary>
/// The record a completed stage leaves beside its outputs (like an entry of DVC's dvc.lock):
/// the fingerprint of its inputs, each input and output with hash and size, timings and metrics.
/// A stage is trusted only when this file exists and its outputs still match it.
/// </summary>
public sealed record StageManifest
{
    public const string FileName = "forgetless.stage.json";

    public required string Stage { get; init; }
    public required string Fingerprint { get; init; }
    public required string ToolVersion { get; init; }
    public required IReadOnlyList<InputRecord> Inputs { get; init; }
    public required IReadOnlyList<OutputRecord> Outputs { get; init; }
    public required DateTimeOffset Started { get; init; }
    public required DateTimeOffset Finished { get; init; }
    public double DurationSeconds => Math.Round((Finished - Started).TotalSeconds, 3);
    public IReadOnlyDictionary<string, object?> Metrics { get; init; } = new Dictionary<string, object?>();
    public string? Failure { get; init; }

    public sealed record InputRecord(string Name, string Kind, string Source, string Sha256, long? Size);
    public sealed record OutputRecord(string Path, string Sha256, long Size);

    /// <summary>One hash standing for every output, used as the input hash of downstream stages.</summary>
    public string OutputsDigest() =>
        FileHashes.Of(string.Join('\n', Outputs.OrderBy(o => o.Path, StringComparer.Ordinal).Select(o => $"{o.Path}\t{o.Sha256}")));

    internal static readonly JsonSerializerOptions Json = new(OutputJson.Options)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static StageManifest? TryRead(string stageDirectory) => Read(stageDirectory, out _);

    /// <summary>
    /// The manifest of a completed stage; null when there is none, or when it cannot be read — then
    /// <paramref name="damage"/> says why (the stage is not trusted and reruns, but that is worth saying).
    /// </summary>
    public static StageManifest? Read(string stageDirectory, out string? damage)
    {
        damage = null;
        string path = Path.Combine(stageDirectory, FileName);
        if (!File.Exists(path)) return null;
        try
        {
            var manifest = JsonSerializer.Deserialize<StageManifest>(File.ReadAllText(path), Json);
            if (manifest is null) damage = $"{FileName} is damaged (it holds no record)";
            return manifest;
        }
        catch (JsonException e)
        {
            damage = $"{FileName} is damaged ({e.Message})";
            return null;
        }
    }

    public void Write(string stageDirectory) =>
        AtomicFile.WriteAllText(Path.Combine(stageDirectory, FileName), JsonSerializer.Serialize(this, Json));
}
