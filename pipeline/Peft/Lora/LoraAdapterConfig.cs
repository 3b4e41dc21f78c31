using System.Text.Json;
using System.Text.Json.Nodes;

namespace Forgetless.Peft;

/// <summary>
/// What PEFT writes to <c>adapter_config.json</c> for LoRA (v0.20 field names). Written with sorted keys and
/// two-space indentation like PEFT's <c>save_pretrained</c>, and without timestamps, so it is deterministic.
/// </summary>
public sealed record LoraAdapterConfig
{
    public const string PeftType = "LORA";

    public required ModuleTargets Targets { get; init; }
    public required LoraOptions Options { get; init; }
    public string? BaseModelNameOrPath { get; init; }
    public string? Revision { get; init; }
    /// <summary>True for GPT-2 (its HF checkpoint stores Conv1D [in, out] weights). Our Linear is already transposed,
    /// so the adapter tensors are the same either way; the flag tells PEFT how to apply them to the HF model.</summary>
    public bool FanInFanOut { get; init; }
    public bool InferenceMode { get; init; } = true;

    /// <summary>adapter_config.json as PEFT writes it (<see cref="Runs.SortedJson"/>).</summary>
    public string ToJson() => Runs.SortedJson.Serialize(new JsonObject
    {
        ["alpha_pattern"] = new JsonObject(),
        ["base_model_name_or_path"] = BaseModelNameOrPath,
        ["bias"] = "none",
        ["exclude_modules"] = null,
        ["fan_in_fan_out"] = FanInFanOut,
        ["inference_mode"] = InferenceMode,
        ["init_lora_weights"] = true,
        ["layers_pattern"] = null,
        ["layers_to_transform"] = Targets.LayersToTransform is { } layers ? new JsonArray(layers.Order().Select(l => (JsonNode)l).ToArray()) : null,
        // Python writes an integral float alpha as an int when the user gave an int (the usual case): 16, not 16.0.
        ["lora_alpha"] = Options.Alpha == Math.Floor(Options.Alpha) && Math.Abs(Options.Alpha) < 1e15 ? JsonValue.Create((long)Options.Alpha) : JsonValue.Create(Options.Alpha),
        ["lora_dropout"] = Options.Dropout,
        ["modules_to_save"] = null,
        ["peft_type"] = PeftType,
        ["r"] = Options.R,
        ["rank_pattern"] = new JsonObject(),
        ["revision"] = Revision,
        ["target_modules"] = AdapterFolder.TargetsJson(Targets),
        ["task_type"] = "CAUSAL_LM",
        ["use_dora"] = Options.UseDora,
        ["use_rslora"] = Options.UseRsLora,
    });

    /// <summary>Reads a PEFT LoRA config; <paramref name="defaultTargets"/> is used when target_modules is absent (PEFT's per-model default).</summary>
    public static LoraAdapterConfig FromJson(string json, string source, IReadOnlyList<string>? defaultTargets = null)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        JsonElement? Get(string name) =>
            root.TryGetProperty(name, out var e) && e.ValueKind != JsonValueKind.Null ? e : null;

        var peftType = Get("peft_type")?.GetString();
        if (peftType != PeftType)
            throw new FormatException($"{source}: peft_type is '{peftType}', expected '{PeftType}'.");
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
