using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Forgetless.Model.Safetensors;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Peft;

/// <summary>
/// What PEFT writes to <c>adapter_config.json</c> for LoRA (v0.20 field names). Written with sorted keys and
/// two-space indentation like PEFT's <c>save_pretrained</c>, and without timestamps, so it is deterministic.
/// </summary>
public sealed record LoraAdapterConfig
{
    public required ModuleTargets Targets { get; init; }
    public required LoraOptions Options { get; init; }
    public string? BaseModelNameOrPath { get; init; }
    public string? Revision { get; init; }
    /// <summary>True for GPT-2 (its HF checkpoint stores Conv1D [in, out] weights). Our Linear is already transposed,
    /// so the adapter tensors are the same either way; the flag tells PEFT how to apply them to the HF model.</summary>
    public bool FanInFanOut { get; init; }
    public bool InferenceMode { get; init; } = true;

    public string ToJson()
    {
        var fields = new SortedDictionary<string, Action<Utf8JsonWriter>>(StringComparer.Ordinal)
        {
            ["alpha_pattern"] = w => { w.WriteStartObject(); w.WriteEndObject(); },
            ["base_model_name_or_path"] = w => WriteStringOrNull(w, BaseModelNameOrPath),
            ["bias"] = w => w.WriteStringValue("none"),
            ["exclude_modules"] = w => w.WriteNullValue(),
            ["fan_in_fan_out"] = w => w.WriteBooleanValue(FanInFanOut),
            ["inference_mode"] = w => w.WriteBooleanValue(InferenceMode),
            ["init_lora_weights"] = w => w.WriteBooleanValue(true),
            ["layers_pattern"] = w => w.WriteNullValue(),
            ["layers_to_transform"] = w =>
            {
                if (Targets.LayersToTransform is null) { w.WriteNullValue(); return; }
                w.WriteStartArray();
                foreach (var l in Targets.LayersToTransform.Order()) w.WriteNumberValue(l);
                w.WriteEndArray();
            },
            ["lora_alpha"] = w => WriteNumber(w, Options.Alpha),
            ["lora_dropout"] = w => w.WriteNumberValue(Options.Dropout),
            ["modules_to_save"] = w => w.WriteNullValue(),
            ["peft_type"] = w => w.WriteStringValue("LORA"),
            ["r"] = w => w.WriteNumberValue(Options.R),
            ["rank_pattern"] = w => { w.WriteStartObject(); w.WriteEndObject(); },
            ["revision"] = w => WriteStringOrNull(w, Revision),
            ["target_modules"] = w =>
            {
                if (Targets.Regex is not null) { w.WriteStringValue(Targets.Regex); return; }
                w.WriteStartArray();
                foreach (var t in Targets.Names!.Distinct().Order(StringComparer.Ordinal)) w.WriteStringValue(t);
                w.WriteEndArray();
            },
            ["task_type"] = w => w.WriteStringValue("CAUSAL_LM"),
            ["use_dora"] = w => w.WriteBooleanValue(Options.UseDora),
            ["use_rslora"] = w => w.WriteBooleanValue(Options.UseRsLora),
        };
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            foreach (var (name, write) in fields)
            {
                w.WritePropertyName(name);
                write(w);
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray()).Replace("\r\n", "\n") + "\n";
    }

    private static void WriteStringOrNull(Utf8JsonWriter w, string? s)
    {
        if (s is null) w.WriteNullValue(); else w.WriteStringValue(s);
    }

    private static void WriteNumber(Utf8JsonWriter w, double v)
    {
        if (v == Math.Floor(v) && Math.Abs(v) < 1e15) w.WriteNumberValue((long)v); else w.WriteNumberValue(v);
    }

    /// <summary>Reads a PEFT LoRA config; <paramref name="defaultTargets"/> is used when target_modules is absent (PEFT's per-model default).</summary>
    public static LoraAdapterConfig FromJson(string json, string source, IReadOnlyList<string>? defaultTargets = null)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        JsonElement? Get(string name) =>
            root.TryGetProperty(name, out var e) && e.ValueKind != JsonValueKind.Null ? e : null;

        var peftType = Get("peft_type")?.GetString();
        if (peftType != "LORA")
            throw new FormatException($"{source}: peft_type is '{peftType}', expected 'LORA'.");
        foreach (var unsupported in new[] { "rank_pattern", "alpha_pattern" })
            if (Get(unsupported) is { ValueKind: JsonValueKind.Object } p && p.EnumerateObject().Any())
                throw new NotSupportedException($"{source}: {unsupported} is not supported.");
        if (Get("bias")?.GetString() is { } bias && bias != "none")
            throw new NotSupportedException($"{source}: bias '{bias}' is not supported (only \"none\").");
        if (Get("modules_to_save") is { ValueKind: JsonValueKind.Array } mts && mts.GetArrayLength() > 0)
            throw new NotSupportedException($"{source}: modules_to_save is not supported.");
        if (Get("layers_pattern") is { } lp && lp.ValueKind != JsonValueKind.Array && lp.GetString() is { } lps && lps is not ("layers" or "h"))
            throw new NotSupportedException($"{source}: layers_pattern '{lps}' is not supported (layers are found by 'layers.N.' or 'h.N.').");

        ModuleTargets targets = Get("target_modules") switch
        {
            { ValueKind: JsonValueKind.String } s => ModuleTargets.FullMatch(s.GetString()!),
            { ValueKind: JsonValueKind.Array } a => ModuleTargets.Suffixes(a.EnumerateArray().Select(e => e.GetString()!).ToArray()),
            null when defaultTargets is not null => ModuleTargets.Suffixes(defaultTargets.ToArray()),
            _ => throw new FormatException($"{source}: target_modules is missing and no default was given."),
        };
        var layers = Get("layers_to_transform") switch
        {
            { ValueKind: JsonValueKind.Number } n => new[] { n.GetInt32() },
            { ValueKind: JsonValueKind.Array } a => a.EnumerateArray().Select(e => e.GetInt32()).ToArray(),
            _ => null,
        };
        if (layers is not null) targets = targets with { LayersToTransform = layers };

        return new LoraAdapterConfig
        {
            Targets = targets,
            Options = new LoraOptions
            {
                R = Get("r")?.GetInt32() ?? 8,
                Alpha = Get("lora_alpha")?.GetDouble() ?? 8,
                Dropout = Get("lora_dropout")?.GetDouble() ?? 0,
                UseRsLora = Get("use_rslora")?.GetBoolean() ?? false,
                UseDora = Get("use_dora")?.GetBoolean() ?? false,
            },
            BaseModelNameOrPath = Get("base_model_name_or_path")?.GetString(),
            Revision = Get("revision")?.GetString(),
            FanInFanOut = Get("fan_in_fan_out")?.GetBoolean() ?? false,
            InferenceMode = Get("inference_mode")?.GetBoolean() ?? true,
        };
    }
}

/// <summary>
/// PEFT-format adapter folders: <c>adapter_config.json</c> + <c>adapter_model.safetensors</c> (+ a README.md card).
/// Tensor keys are <c>base_model.model.</c> + module path + <c>.lora_A.weight</c> / <c>.lora_B.weight</c> /
/// <c>.lora_magnitude_vector</c>; bottleneck adapters use the same scheme with <c>.adapter_down.*</c> / <c>.adapter_up.*</c>
/// (not a PEFT method; those folders carry only the weights).
/// </summary>
public static class PeftAdapter
{
    public const string ConfigFile = "adapter_config.json";
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

    /// <summary>Writes a PEFT LoRA folder. Same adapter and config → same bytes.</summary>
    public static void SaveLora(string folder, nn.Module model, LoraAdapterConfig config)
    {
        Directory.CreateDirectory(folder);
        SafetensorsWriter.Write(Path.Combine(folder, WeightsFile), StateDict(model), SafetensorsDType.Keep, new Dictionary<string, string> { ["format"] = "pt" });
        WriteAtomically(Path.Combine(folder, ConfigFile), config.ToJson());
        WriteAtomically(Path.Combine(folder, "README.md"), ModelCard(config));
    }

    /// <summary>Writes only <c>adapter_model.safetensors</c> (any adapter method).</summary>
    public static void SaveWeights(string folder, nn.Module model)
    {
        Directory.CreateDirectory(folder);
        SafetensorsWriter.Write(Path.Combine(folder, WeightsFile), StateDict(model), SafetensorsDType.Keep, new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>
    /// Reads a PEFT LoRA folder (ours or another tool's), injects LoRA into <paramref name="model"/> as the config says
    /// and loads the tensors. Returns the config.
    /// </summary>
    public static LoraAdapterConfig LoadLora(string folder, nn.Module model, IReadOnlyList<string>? defaultTargets = null)
    {
        var configPath = Path.Combine(folder, ConfigFile);
        if (!File.Exists(configPath)) throw new FileNotFoundException($"No {ConfigFile} in {folder}.", configPath);
        var config = LoraAdapterConfig.FromJson(File.ReadAllText(configPath), configPath, defaultTargets);
        Lora.Apply(model, config.Targets, config.Options);
        LoadWeights(folder, model);
        return config;
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

    private static string ModelCard(LoraAdapterConfig c) => string.Create(CultureInfo.InvariantCulture,
        $"""
        ---
        library_name: peft
        base_model: {c.BaseModelNameOrPath ?? "unknown"}
        ---

        # LoRA adapter

        Written by Forgetless. r={c.Options.R}, lora_alpha={c.Options.Alpha}, use_rslora={c.Options.UseRsLora}, use_dora={c.Options.UseDora}, target_modules={c.Targets}.

        """);

    private static void WriteAtomically(string path, string text)
    {
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, text, new UTF8Encoding(false));
        File.Move(tmp, path, overwrite: true);
    }
}
