using System.Text.Json;
using static TorchSharp.torch;

namespace Forgetless.Model.Safetensors;

/// <summary>
/// The tensors of a model folder: one <c>model.safetensors</c>, or the shards listed in
/// <c>model.safetensors.index.json</c> (<c>{"weight_map": {key: shard file}}</c>). Headers are read and
/// validated up front; tensor data is read on demand.
/// </summary>
public sealed class CheckpointWeights
{
    public const string SingleFile = "model.safetensors";
    public const string IndexFile = "model.safetensors.index.json";

    private readonly Dictionary<string, SafetensorsFile> fileOfKey;

    private CheckpointWeights(string description, Dictionary<string, SafetensorsFile> fileOfKey)
    {
        Description = description;
        this.fileOfKey = fileOfKey;
    }

    /// <summary>File name(s) for messages about the checkpoint as a whole.</summary>
    public string Description { get; }

    public IEnumerable<string> Keys => fileOfKey.Keys;

    public bool Contains(string key) => fileOfKey.ContainsKey(key);

    public SafetensorsEntry Entry(string key) => fileOfKey[key].Entries[key];

    public string FileOf(string key) => Path.GetFileName(fileOfKey[key].Path);

    /// <summary>The type the checkpoint stores <paramref name="key"/> in.</summary>
    public ScalarType StoredType(string key) => fileOfKey[key].StoredType(key);

    public Tensor ReadFloat32(string key) => fileOfKey[key].ReadFloat32(key);

    /// <summary>A tensor in <paramref name="type"/> on <paramref name="device"/>, read from its (memory-mapped) shard.</summary>
    public Tensor Read(string key, ScalarType? type = null, Device? device = null) => fileOfKey[key].Read(key, type, device);

    /// <summary>True when <paramref name="directory"/> has safetensors weights in either layout.</summary>
    public static bool ExistIn(string directory) =>
        File.Exists(Path.Combine(directory, SingleFile)) || File.Exists(Path.Combine(directory, IndexFile));

    public static CheckpointWeights Open(string directory)
    {
        var single = Path.Combine(directory, SingleFile);
        if (File.Exists(single))
        {
            var file = SafetensorsFile.Open(single);
            return new CheckpointWeights(SingleFile, file.Entries.Keys.ToDictionary(k => k, _ => file, StringComparer.Ordinal));
        }
        var index = Path.Combine(directory, IndexFile);
        if (!File.Exists(index))
            throw new FileNotFoundException($"{directory}: no {SingleFile} or {IndexFile}", single);
        return OpenSharded(directory, index);
    }

    private static CheckpointWeights OpenSharded(string directory, string indexPath)
    {
        Dictionary<string, string> weightMap;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(indexPath));
            weightMap = doc.RootElement.GetProperty("weight_map").EnumerateObject()
                .ToDictionary(p => p.Name, p => p.Value.GetString()!, StringComparer.Ordinal);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new InvalidDataException($"{IndexFile}: expected {{\"weight_map\": {{tensor: shard file}}}} ({e.Message})", e);
        }
        var shards = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        var fileOfKey = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        foreach (var (key, shardName) in weightMap)
        {
            if (shardName.Contains('/') || shardName.Contains('\\') || shardName.Contains(".."))
                throw new InvalidDataException($"{IndexFile}: shard '{shardName}' for tensor '{key}' must be a file name in the model folder");
            if (!shards.TryGetValue(shardName, out var shard))
            {
                var path = Path.Combine(directory, shardName);
                if (!File.Exists(path))
                    throw new FileNotFoundException($"{IndexFile}: shard '{shardName}' (holding tensor '{key}') not found", path);
                shards[shardName] = shard = SafetensorsFile.Open(path);
            }
            if (!shard.Entries.ContainsKey(key))
                throw new InvalidDataException($"{IndexFile}: tensor '{key}' is mapped to '{shardName}', which does not contain it");
            fileOfKey[key] = shard;
        }
        return new CheckpointWeights($"{IndexFile} ({shards.Count} shards)", fileOfKey);
    }
}
