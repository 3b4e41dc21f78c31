using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Forgetless.Model;
using Forgetless.Model.Safetensors;
using Forgetless.Peft;
using static TorchSharp.torch;

namespace Forgetless.Packaging;

/// <summary>
/// Writes an adapter folder into a package the way its consumers expect it:
/// <list type="bullet">
/// <item>LoRA, DoRA, rsLoRA (<c>LORA</c>): rewritten from the adapter as loaded into the base model, so the
/// package holds exactly PEFT's file (keys <c>base_model.model.PATH.lora_A.weight</c>, no <c>.default</c> infix, sorted
/// config keys, <c>fan_in_fan_out</c> true when a target is a GPT-2 Conv1D, a portable <c>base_model_name_or_path</c>).</item>
/// <item>Prefix tuning (<c>PREFIX_TUNING</c>, PEFT's <c>prompt_embeddings</c>) and Forgetless' own formats
/// (<c>FORGETLESS_BOTTLENECK</c>, <c>FORGETLESS_WEIGHTS</c>): the weights copied byte for byte, the config with sorted keys
/// and the portable base model name.</item>
/// </list>
/// Either way the adapter is first applied to the base model through <see cref="AdapterFolder.Apply"/>, so a
/// package is never written for an adapter that does not fit its base.
/// </summary>
public static class AdapterExport
{
    public const string PrefixType = "PREFIX_TUNING";
    public const string PromptEmbeddingsKey = "prompt_embeddings";

    /// <summary>The <c>peft_type</c> of an adapter folder's config.</summary>
    public static string PeftType(string adapterFolder)
    {
        var config = ReadConfig(adapterFolder);
        return config["peft_type"]?.GetValue<string>()
               ?? throw new UserInputException($"{Path.Combine(adapterFolder, PeftAdapter.ConfigFile)}: 'peft_type' is missing");
    }

    public static JsonObject ReadConfig(string adapterFolder)
    {
        string path = Path.Combine(adapterFolder, PeftAdapter.ConfigFile);
        if (!Directory.Exists(adapterFolder)) throw new UserInputException($"{adapterFolder}: adapter folder not found");
        if (!File.Exists(path)) throw new UserInputException($"{adapterFolder}: no {PeftAdapter.ConfigFile}; expected a PEFT adapter folder");
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new UserInputException($"{path}: expected a JSON object");
        }
        catch (JsonException e)
        {
            throw new UserInputException($"{path}: not valid JSON ({e.Message})");
        }
    }

    /// <summary>
    /// Applies <paramref name="adapterFolder"/> to the base model and writes the package's adapter files
    /// (<c>adapter_config.json</c>, <c>adapter_model.safetensors</c>) into <paramref name="target"/>. Returns the peft_type.
    /// </summary>
    public static string Write(string adapterFolder, string baseModel, string baseModelName, string target)
    {
        string type = PeftType(adapterFolder);
        Directory.CreateDirectory(target);
        using var model = ModelFolder.LoadModel(baseModel);
        AdapterFolder.Apply(model, adapterFolder);
        if (type == "LORA")
        {
            var config = LoraAdapterConfig.FromJson(File.ReadAllText(Path.Combine(adapterFolder, PeftAdapter.ConfigFile)), adapterFolder);
            var adapted = AdapterLayers.Find(model).Select(l => l.path).ToList();
            var lora = config with
            {
                BaseModelNameOrPath = baseModelName,
                FanInFanOut = adapted.Any(model.FanInFanOutModules.Contains),
                InferenceMode = true,
            };
            PeftAdapter.SaveLora(target, model, lora);
            File.Delete(Path.Combine(target, "README.md")); // the package's model card replaces PEFT's short one
            return type;
        }
        if (type == PrefixType)
        {
            var tensors = SafetensorsFile.Open(Path.Combine(adapterFolder, PeftAdapter.WeightsFile)).ReadAll();
            try
            {
                if (!tensors.ContainsKey(PromptEmbeddingsKey))
                    throw new UserInputException($"{adapterFolder}: a PREFIX_TUNING adapter must hold one tensor '{PromptEmbeddingsKey}'");
            }
            finally
            {
                foreach (var t in tensors.Values) t.Dispose();
            }
        }
        File.Copy(Path.Combine(adapterFolder, PeftAdapter.WeightsFile), Path.Combine(target, PeftAdapter.WeightsFile), overwrite: true);
        var rewritten = ReadConfig(adapterFolder);
        rewritten["base_model_name_or_path"] = baseModelName;
        Runs.AtomicFile.WriteAllText(Path.Combine(target, PeftAdapter.ConfigFile), SortedJson(rewritten));
        return type;
    }

    /// <summary>JSON with keys sorted at every level and two-space indentation, like Python's json.dumps(sort_keys=True, indent=2).</summary>
    public static string SortedJson(JsonNode node)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            Sorted(node).WriteTo(writer);
        return Encoding.UTF8.GetString(stream.ToArray()).Replace("\r\n", "\n") + "\n";
    }

    private static JsonNode Sorted(JsonNode node) => node switch
    {
        JsonObject o => new JsonObject(o.OrderBy(p => p.Key, StringComparer.Ordinal)
            .Select(p => KeyValuePair.Create(p.Key, p.Value is null ? null : Sorted(p.Value)))),
        JsonArray a => new JsonArray(a.Select(e => e is null ? null : Sorted(e)).ToArray()),
        _ => node.DeepClone(),
    };

    /// <summary>
    /// The base model with the adapter folded in, as an HF model folder (config.json, model.safetensors,
    /// generation and tokenizer files of the base). Method: load the base, apply the adapter, fold every LoRA/DoRA
    /// layer into its weight (W' = W + s·B·A; DoRA: m/‖W + s·B·A‖ · (W + s·B·A)), then copy the effective weights
    /// into a plain model of the base architecture and save it. Changed-weights adapters are already plain weights.
    /// Prefix tuning and bottleneck adapters add computation that no weight of the base can hold: they are refused.
    /// </summary>
    public static void WriteMerged(string adapterFolder, string baseModel, string target)
    {
        string type = PeftType(adapterFolder);
        if (type == PrefixType)
            throw new UserInputException(
                $"package.exportMerged: {adapterFolder} is a prefix-tuning adapter; its virtual key/value tokens cannot be folded into the base weights, " +
                "so there is no merged model. Set package.exportMerged=false (the PEFT folder still loads with PeftModel.from_pretrained)");
        var loaded = ModelFolder.Load(baseModel, loadTokenizer: false);
        using var model = loaded.Model;
        AdapterFolder.Apply(model, adapterFolder);
        if (model.PrefixKeyValues is not null)
            throw new UserInputException($"package.exportMerged: {adapterFolder} adds prefix key/values; they cannot be merged into the base weights");
        foreach (var (path, layer) in AdapterLayers.Find(model))
        {
            if (layer is LoraLinear lora) lora.Merge();
            else
                throw new UserInputException(
                    $"package.exportMerged: the adapter at '{path}' is a {layer.GetType().Name}, which adds a non-linear branch that no base weight can hold; " +
                    "only LoRA/DoRA and changed-weight (full, freeze) adapters can be merged");
        }
        using var plain = ModelFolder.LoadModel(baseModel);
        var effective = model.named_parameters()
            .ToDictionary(p => p.name.Replace(".base_layer.", ".", StringComparison.Ordinal), p => p.parameter, StringComparer.Ordinal);
        using (no_grad())
        {
            foreach (var (name, p) in plain.named_parameters())
            {
                if (!effective.TryGetValue(name, out var source))
                    throw new InvalidOperationException($"merge: the adapted model has no effective weight for '{name}'");
                p.copy_(source);
            }
        }
        ModelFolder.Save(plain, target, new ModelSaveOptions { TokenizerDirectory = baseModel, Generation = loaded.Generation });
    }
}
