using System.Text.Json.Nodes;
using Forgetless.Model;
using Forgetless.Model.Safetensors;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Peft;

/// <summary>
/// Applies a saved adapter folder to a freshly loaded base model, whatever method made it. Every
/// consumer (score, generate, evaluate, distill, package verify) goes through here, so a new
/// method becomes usable everywhere by adding one case. Folder formats (docs/finetune.md):
/// <list type="bullet">
/// <item><c>LORA</c> (lora, DoRA, rsLoRA, qlora): PEFT's folder.</item>
/// <item><c>PREFIX_TUNING</c>: PEFT's folder, one tensor <c>prompt_embeddings</c> [P, L·2·token_dim].</item>
/// <item><c>FORGETLESS_BOTTLENECK</c> (adapter): <c>adapter_model.safetensors</c> with PEFT-style keys
/// <c>base_model.model.PATH.adapter_down.weight</c> …; the config names the size, activation and targets.</item>
/// <item><c>FORGETLESS_WEIGHTS</c> (full, freeze): the changed tensors under their HF checkpoint keys.</item>
/// </list>
/// </summary>
public static class AdapterFolder
{
    public const string PeftConfigFile = "adapter_config.json";
    public const string BottleneckType = "FORGETLESS_BOTTLENECK";
    public const string WeightsType = "FORGETLESS_WEIGHTS";
    public const string PrefixType = "PREFIX_TUNING";
    public const string PromptEmbeddingsKey = "prompt_embeddings";

    /// <summary>Every peft_type <see cref="Apply"/> understands.</summary>
    public static IReadOnlyList<string> SupportedTypes { get; } = ["LORA", PrefixType, BottleneckType, WeightsType];

    public sealed record Info(string PeftType, JsonObject Config, string ConfigPath);

    /// <summary>Reads and checks <c>adapter_config.json</c> of a folder.</summary>
    public static Info Describe(string folder)
    {
        string configPath = Path.Combine(folder, PeftConfigFile);
        if (!Directory.Exists(folder)) throw new UserInputException($"{folder}: adapter folder not found");
        if (!File.Exists(configPath)) throw new UserInputException($"{folder}: no {PeftConfigFile}; expected a PEFT adapter folder");
        JsonObject config;
        try
        {
            config = JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject
                     ?? throw new UserInputException($"{configPath}: expected a JSON object");
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new UserInputException($"{configPath}: not valid JSON ({e.Message})");
        }
        string type = config["peft_type"]?.GetValue<string>()
                      ?? throw new UserInputException($"{configPath}: 'peft_type' is missing");
        return new Info(type, config, configPath);
    }

    /// <summary>Loads the adapter in <paramref name="folder"/> into <paramref name="model"/> and returns the PEFT type it found.</summary>
    public static string Apply(nn.Module model, string folder)
    {
        var info = Describe(folder);
        switch (info.PeftType)
        {
            case "LORA":
                PeftAdapter.LoadLora(folder, model);
                return info.PeftType;
            case BottleneckType:
            {
                var targets = ReadTargets(info);
                var options = new BottleneckOptions
                {
                    BottleneckSize = info.Config["bottleneck_size"]?.GetValue<int>() ?? throw new UserInputException($"{info.ConfigPath}: 'bottleneck_size' is missing"),
                    Activation = Enum.Parse<AdapterActivation>(info.Config["activation"]?.GetValue<string>() ?? "gelu", ignoreCase: true),
                };
                Bottleneck.Apply(model, targets, options);
                PeftAdapter.LoadWeights(folder, model);
                return info.PeftType;
            }
            case PrefixType:
            {
                var causal = model as CausalLM ?? throw new UserInputException($"{folder}: prefix tuning needs a causal language model");
                PrefixEncoder.CheckConfig(info.Config, causal.Config, info.ConfigPath);
                using var table = ReadPromptEmbeddings(folder);
                var prefix = PrefixEncoder.FromPromptEmbeddings(causal.Config, table);
                foreach (var p in prefix.parameters()) p.requires_grad = false;
                causal.PrefixKeyValues = prefix;
                return info.PeftType;
            }
            case WeightsType:
                ApplyWeights(model as CausalLM ?? throw new UserInputException($"{folder}: changed weights need a causal language model"), folder);
                return info.PeftType;
            default:
                throw new UserInputException($"{info.ConfigPath}: peft_type '{info.PeftType}' is not supported; supported: {string.Join(", ", SupportedTypes)}");
        }
    }

    /// <summary>The <c>prompt_embeddings</c> tensor of a PREFIX_TUNING folder (the caller owns it).</summary>
    public static Tensor ReadPromptEmbeddings(string folder)
    {
        var path = Path.Combine(folder, PeftAdapter.WeightsFile);
        if (!File.Exists(path)) throw new UserInputException($"{folder}: no {PeftAdapter.WeightsFile}");
        var file = SafetensorsFile.Open(path);
        if (!file.Entries.ContainsKey(PromptEmbeddingsKey)) throw new UserInputException($"{path}: no '{PromptEmbeddingsKey}' tensor");
        return file.ReadTensor(PromptEmbeddingsKey);
    }

    /// <summary>Copies changed tensors (HF checkpoint keys, GPT-2 Conv1D weights in [in, out]) into the model.</summary>
    private static void ApplyWeights(CausalLM model, string folder)
    {
        var path = Path.Combine(folder, PeftAdapter.WeightsFile);
        if (!File.Exists(path)) throw new UserInputException($"{folder}: no {PeftAdapter.WeightsFile}");
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        var tensors = SafetensorsFile.Open(path).ReadAll();
        try
        {
            using var _ = no_grad();
            foreach (var (key, t) in tensors)
            {
                var name = parameters.ContainsKey(key) ? key
                    : parameters.ContainsKey(model.BaseModelPrefix + "." + key) ? model.BaseModelPrefix + "." + key
                    : throw new UserInputException($"{path}: tensor '{key}' is not a weight of this {model.Config.ModelType} model");
                var p = parameters[name];
                bool transpose = name.EndsWith(".weight", StringComparison.Ordinal) && model.FanInFanOutModules.Contains(name[..^".weight".Length]);
                using var source = transpose ? t.t() : t.alias();
                if (!source.shape.SequenceEqual(p.shape))
                    throw new UserInputException($"{path}: '{key}' has shape [{string.Join(", ", t.shape)}], the model's [{string.Join(", ", p.shape)}]");
                p.copy_(source);
            }
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    private static ModuleTargets ReadTargets(Info info) => info.Config["target_modules"] switch
    {
        JsonArray a => ModuleTargets.Suffixes(a.Select(e => e!.GetValue<string>()).ToArray()),
        JsonValue v => ModuleTargets.FullMatch(v.GetValue<string>()),
        _ => throw new UserInputException($"{info.ConfigPath}: 'target_modules' is missing"),
    };
}
