using Forgetless.Model.Devices;
using Forgetless.Runs;
using Forgetless.Model.Safetensors;
using Forgetless.Model.Tokenizers;

namespace Forgetless.Model;

/// <summary>A model folder loaded into memory: the model, its tokenizer (when the folder has one) and generation defaults.</summary>
public sealed record LoadedModel(CausalLM Model, ITokenizer? Tokenizer, GenerationConfig? Generation, string Directory);

/// <summary>Options for <see cref="ModelFolder.Save"/>.</summary>
public sealed record ModelSaveOptions
{
    /// <summary>F32 (default) or BF16 (half the size; values rounded to bfloat16).</summary>
    public SafetensorsDType DType { get; init; } = SafetensorsDType.F32;

    /// <summary>Folder whose tokenizer files are copied next to the weights (usually the folder the model came from).</summary>
    public string? TokenizerDirectory { get; init; }

    public GenerationConfig? Generation { get; init; }

    /// <summary>
    /// Split the weights into shards of at most this many bytes (<c>model-00001-of-0000N.safetensors</c> and
    /// <c>model.safetensors.index.json</c>, as transformers' <c>save_pretrained(max_shard_size=…)</c> writes them); null: one file.
    /// </summary>
    public long? MaxShardBytes { get; init; }
}

/// <summary>
/// Reads and writes HF model folders: <c>config.json</c>, <c>model.safetensors</c> (or a sharded index),
/// <c>generation_config.json</c> and the tokenizer files. Weights are only read from safetensors.
/// </summary>
public static class ModelFolder
{
    public const string ConfigFile = "config.json";
    public const string GenerationConfigFile = "generation_config.json";

    /// <summary>Tokenizer files copied when saving.</summary>
    public static readonly IReadOnlyList<string> TokenizerFiles =
        ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt", "added_tokens.json"];

    private static readonly string[] PickleFiles = ["pytorch_model.bin", "pytorch_model.bin.index.json"];
    private static readonly string[] PickleExtensions = [".bin", ".pt", ".pth", ".ckpt", ".pkl"];

    public static LoadedModel Load(string directory, bool loadTokenizer = true, Placement? placement = null, IModuleLoader? loader = null)
    {
        var model = LoadModel(directory, placement, loader);
        var tokenizer = loadTokenizer && TokenizerLoader.HasTokenizer(directory) ? TokenizerLoader.Load(directory) : null;
        if (tokenizer is not null && tokenizer.VocabSize > model.Config.VocabSize)
            throw new InvalidDataException(
                $"{directory}: tokenizer vocabulary has {tokenizer.VocabSize} ids but the model's embedding has only {model.Config.VocabSize} rows "
                + $"({ConfigFile} vocab_size); ids past {model.Config.VocabSize - 1} would index outside the embedding");
        var genPath = Path.Combine(directory, GenerationConfigFile);
        var generation = File.Exists(genPath) ? GenerationConfig.FromJson(File.ReadAllText(genPath)) : null;
        return new LoadedModel(model, tokenizer, generation, directory);
    }

    /// <summary>
    /// The model of a folder on <paramref name="placement"/>'s device in its type (the CPU in f32 by default), loaded
    /// tensor by tensor into a skeleton that holds no memory until then; shards are read one tensor at a time from
    /// memory-mapped files. <paramref name="loader"/> builds the modules it claims from their tensors (qlora).
    /// </summary>
    public static CausalLM LoadModel(string directory, Placement? placement = null, IModuleLoader? loader = null)
    {
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"model folder not found: {directory}");
        var configPath = Path.Combine(directory, ConfigFile);
        if (!File.Exists(configPath)) throw new FileNotFoundException($"{directory}: no {ConfigFile}", configPath);
        var config = ModelConfig.FromJson(File.ReadAllText(configPath), ConfigFile);
        if (!CheckpointWeights.ExistIn(directory)) throw NoSafetensors(directory);
        var weights = CheckpointWeights.Open(directory);
        var model = ModelFactory.CreateUninitialized(config, TorchSharp.torch.META);
        try
        {
            model.LoadFrom(weights, placement ?? Placement.Cpu, loader);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return model;
    }

    /// <summary>
    /// Tensors in the model's order, a new shard whenever the next one would pass <paramref name="maxShardBytes"/>, and
    /// the index (<c>{"metadata": {"total_size": N}, "weight_map": {key: shard}}</c>) written last.
    /// </summary>
    private static void WriteShards(CausalLM model, string directory, SafetensorsDType dtype, long maxShardBytes)
    {
        var shards = new List<List<KeyValuePair<string, TorchSharp.torch.Tensor>>> { new() };
        long size = 0, total = 0;
        var tensors = model.CheckpointTensors().ToList();
        foreach (var tensor in tensors)
        {
            long bytes = tensor.Value.numel() * dtype.Size();
            if (size > 0 && size + bytes > maxShardBytes)
            {
                shards.Add([]);
                size = 0;
            }
            shards[^1].Add(tensor);
            size += bytes;
            total += bytes;
        }
        var weightMap = new System.Text.Json.Nodes.JsonObject();
        for (int i = 0; i < shards.Count; i++)
        {
            string name = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors");
            using (TorchSharp.torch.NewDisposeScope())
                SafetensorsWriter.Write(Path.Combine(directory, name), shards[i], dtype);
            foreach (var (key, _) in shards[i]) weightMap[key] = name;
        }
        var index = new System.Text.Json.Nodes.JsonObject
        {
            ["metadata"] = new System.Text.Json.Nodes.JsonObject { ["total_size"] = total },
            ["weight_map"] = weightMap,
        };
        AtomicFile.WriteAllText(Path.Combine(directory, CheckpointWeights.IndexFile),
            index.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        var single = Path.Combine(directory, CheckpointWeights.SingleFile);
        if (File.Exists(single)) File.Delete(single); // the single file would win on load
    }

    private static Exception NoSafetensors(string directory)
    {
        var pickles = Directory.EnumerateFiles(directory)
            .Select(Path.GetFileName)
            .Where(f => PickleFiles.Contains(f) || PickleExtensions.Contains(Path.GetExtension(f!)))
            .Order(StringComparer.Ordinal)
            .ToList();
        if (pickles.Count == 0)
            return new FileNotFoundException($"{directory}: no weights ({CheckpointWeights.SingleFile} or {CheckpointWeights.IndexFile})");
        return new NotSupportedException(
            $"{directory}: weights are only in {string.Join(", ", pickles)}, a PyTorch pickle. Pickle files can execute arbitrary code "
            + "when loaded, so they are refused. Convert them to safetensors once, in Python: "
            + "AutoModelForCausalLM.from_pretrained(path).save_pretrained(path, safe_serialization=True), "
            + "or the safetensors project's convert.py script.");
    }

    /// <summary>Writes config.json, model.safetensors, generation_config.json and tokenizer files; each file atomically.</summary>
    public static void Save(CausalLM model, string directory, ModelSaveOptions? options = null)
    {
        options ??= new ModelSaveOptions();
        Directory.CreateDirectory(directory);
        var configJson = model.Config.ToJson();
        configJson["torch_dtype"] = options.DType == SafetensorsDType.BF16 ? "bfloat16" : "float32";
        AtomicFile.WriteAllText(Path.Combine(directory, ConfigFile),
            configJson.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        if (options.MaxShardBytes is { } maxShard)
        {
            WriteShards(model, directory, options.DType, maxShard);
        }
        else
        {
            using (TorchSharp.torch.NewDisposeScope())
                SafetensorsWriter.Write(Path.Combine(directory, CheckpointWeights.SingleFile), model.CheckpointTensors(), options.DType);
            // A stale index next to the new single file would be ambiguous; the single file wins on load anyway.
            var staleIndex = Path.Combine(directory, CheckpointWeights.IndexFile);
            if (File.Exists(staleIndex)) File.Delete(staleIndex);
        }
        if (options.Generation is { } generation)
            AtomicFile.WriteAllText(Path.Combine(directory, GenerationConfigFile), generation.ToJson());
        if (options.TokenizerDirectory is { } source && Path.GetFullPath(source) != Path.GetFullPath(directory))
        {
            foreach (var file in TokenizerFiles)
            {
                var from = Path.Combine(source, file);
                if (File.Exists(from)) AtomicFile.Write(Path.Combine(directory, file), s => { using var f = File.OpenRead(from); f.CopyTo(s); });
            }
        }
    }
}
