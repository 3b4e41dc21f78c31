using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Forgetless.Runs;

/// <summary>
/// The one key style of every JSON file Forgetless itself writes (stage manifests, summaries, stats, caches): snake_case,
/// as Hugging Face and lm-evaluation-harness write theirs, indented, enums in snake_case. Files whose format another
/// tool defines (adapter_config.json, config.json, tokenizer files) are written as that tool writes them instead, and
/// the pipeline file's own keys keep the user's spelling wherever the configuration is echoed.
/// </summary>
public static class OutputJson
{
    public static JsonSerializerOptions Options { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, Options) + "\n";

    /// <summary>Writes <paramref name="value"/> atomically (temp file, then moved into place).</summary>
    public static void Write<T>(string path, T value) => AtomicFile.WriteAllText(path, Serialize(value));

    public static T Read<T>(string path) => JsonSerializer.Deserialize<T>(File.ReadAllText(path), Options)
        ?? throw new InvalidDataException($"{path}: empty JSON");

    /// <summary>A record's fields as a key → value map in this style (a stage's metrics for its manifest).</summary>
    public static IReadOnlyDictionary<string, object?> ToMetrics<T>(T value) =>
        (JsonSerializer.SerializeToNode(value, Options) as JsonObject ?? throw new ArgumentException("expected an object", nameof(value)))
        .ToDictionary(kv => kv.Key, kv => (object?)kv.Value?.DeepClone(), StringComparer.Ordinal);
}
