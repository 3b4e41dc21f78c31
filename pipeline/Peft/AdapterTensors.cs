using Forgetless.Model.Safetensors;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Peft;

/// <summary>
/// <c>adapter_model.safetensors</c> of the methods that inject layers (LoRA, bottleneck adapters, IA³): the tensors of
/// every <see cref="IAdapterLayer"/> under PEFT's keys, <c>base_model.model.</c> + module path + the layer's own name
/// (<c>.lora_A.weight</c>, <c>.ia3_l</c>, …), sorted, written with <c>format: pt</c> metadata as PEFT does.
/// </summary>
public static class AdapterTensors
{
    public const string WeightsFile = "adapter_model.safetensors";
    public const string KeyPrefix = "base_model.model.";

    /// <summary>The adapter tensors under their PEFT keys, sorted.</summary>
    public static SortedDictionary<string, Tensor> StateDict(nn.Module model)
    {
        var result = new SortedDictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, p) in AdapterLayers.NamedParameters(model)) result[KeyPrefix + name] = p;
        if (result.Count == 0) throw new InvalidOperationException("The model has no adapter layers to save.");
        return result;
    }

    /// <summary>Writes <c>adapter_model.safetensors</c> of the model's adapter layers. Same tensors → same bytes.</summary>
    public static void SaveWeights(string folder, nn.Module model)
    {
        Directory.CreateDirectory(folder);
        SafetensorsWriter.Write(Path.Combine(folder, WeightsFile), StateDict(model), SafetensorsDType.Keep, new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>Loads <c>adapter_model.safetensors</c> into adapters already injected into <paramref name="model"/>.</summary>
    public static void LoadWeights(string folder, nn.Module model)
    {
        var path = Path.Combine(folder, WeightsFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"No {WeightsFile} in {folder}.", path);
        var tensors = SafetensorsFile.Open(path).ReadAll();
        try
        {
            LoadStateDict(model, tensors, path);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    /// <summary>Key as stored by PEFT or by tools that keep the adapter name: drops the prefix and any <c>.default</c> infix.</summary>
    public static string NormalizeKey(string key)
    {
        var k = key.StartsWith(KeyPrefix, StringComparison.Ordinal) ? key[KeyPrefix.Length..] : key;
        k = k.Replace(".default.", ".", StringComparison.Ordinal);
        if (k.EndsWith(".default", StringComparison.Ordinal)) k = k[..^".default".Length];
        if (k.EndsWith(".lora_magnitude_vector.weight", StringComparison.Ordinal)) k = k[..^".weight".Length];
        return k;
    }

    public static void LoadStateDict(nn.Module model, IReadOnlyDictionary<string, Tensor> tensors, string source)
    {
        var expected = AdapterLayers.NamedParameters(model);
        if (expected.Count == 0) throw new InvalidOperationException("The model has no adapter layers to load into.");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        using var _ = no_grad();
        foreach (var (key, t) in tensors)
        {
            var name = NormalizeKey(key);
            if (!expected.TryGetValue(name, out var p))
            {
                throw new InvalidOperationException(
                    $"{source}: tensor '{key}' has no matching adapter in the model (looked for '{name}'). Adapted tensors include: " +
                    string.Join(", ", expected.Keys.Take(6)) + ".");
            }
            if (!t.shape.SequenceEqual(p.shape))
                throw new InvalidOperationException(
                    $"{source}: tensor '{key}' has shape [{string.Join(", ", t.shape)}] but the model's '{name}' has shape [{string.Join(", ", p.shape)}].");
            p.copy_(t.to(ScalarType.Float32));
            seen.Add(name);
        }
        var missing = expected.Keys.Where(k => !seen.Contains(k)).ToList();
        if (missing.Count > 0)
            throw new InvalidOperationException(
                $"{source}: {missing.Count} adapter tensor(s) missing, e.g. '{KeyPrefix}{missing[0]}'.");
    }
}
