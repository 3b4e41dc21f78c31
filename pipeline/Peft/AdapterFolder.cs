using System.Text.Json;
using System.Text.Json.Nodes;
using Forgetless.Model;

namespace Forgetless.Peft;

/// <summary>
/// An adapter folder as PEFT lays it out: <c>adapter_config.json</c> (its <c>peft_type</c> says which method reads it)
/// and <c>adapter_model.safetensors</c>. Every consumer (score, generate, evaluate, distill, package, verify) applies
/// a folder through <see cref="Apply"/>, which hands it to the registered method that reads its type.
/// </summary>
public static class AdapterFolder
{
    public const string ConfigFile = "adapter_config.json";

    /// <summary>A folder with its parsed config.</summary>
    public sealed record Info(string Folder, string PeftType, JsonObject Config)
    {
        public string ConfigPath => Path.Combine(Folder, ConfigFile);
        public string WeightsPath => Path.Combine(Folder, AdapterTensors.WeightsFile);

        /// <summary>An integer key of the config; a missing or non-integer value is a named error.</summary>
        public int Int(string key) => Config[key] is JsonValue v && v.TryGetValue<int>(out var i) ? i
            : throw new UserInputException($"{ConfigPath}: '{key}' is missing or not a whole number");
    }

    /// <summary>Reads and checks <c>adapter_config.json</c> of a folder.</summary>
    public static Info Describe(string folder)
    {
        string configPath = Path.Combine(folder, ConfigFile);
        if (!Directory.Exists(folder)) throw new UserInputException($"{folder}: adapter folder not found");
        if (AdapterSet.IsSet(folder))
            throw new UserInputException($"{folder}: holds several adapters ({string.Join(", ", AdapterSet.Names(folder))}); choose one with --task NAME, or --task auto to route by the input");
        if (!File.Exists(configPath)) throw new UserInputException($"{folder}: no {ConfigFile}; expected a PEFT adapter folder");
        JsonObject config;
        try
        {
            config = JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject
                     ?? throw new UserInputException($"{configPath}: expected a JSON object");
        }
        catch (JsonException e)
        {
            throw new UserInputException($"{configPath}: not valid JSON ({e.Message})");
        }
        string type = config["peft_type"] is JsonValue t && t.TryGetValue<string>(out var s) ? s
            : throw new UserInputException($"{configPath}: 'peft_type' is missing");
        return new Info(folder, type, config);
    }

    /// <summary>The registered method that reads the folder's type; an unknown type is a named error listing the known ones.</summary>
    public static PeftMethod MethodOf(Info info) => PeftMethods.Reading(info.PeftType)
        ?? throw new UserInputException($"{info.ConfigPath}: peft_type '{info.PeftType}' is not supported; supported: {string.Join(", ", PeftMethods.PeftTypes)}");

    /// <summary>Loads the adapter in <paramref name="folder"/> into <paramref name="model"/> and returns its PEFT type.</summary>
    public static string Apply(CausalLM model, string folder)
    {
        var info = Describe(folder);
        MethodOf(info).Load(model, info);
        return info.PeftType;
    }

    /// <summary>Writes <c>adapter_config.json</c> as PEFT's save_pretrained does: keys sorted at every level, two-space indentation.</summary>
    public static void WriteConfig(string folder, JsonObject config) =>
        Runs.AtomicFile.WriteAllText(Path.Combine(folder, ConfigFile), Runs.SortedJson.Serialize(config));

    /// <summary>PEFT's <c>target_modules</c>: a list of names (suffix match) or one full-match regex.</summary>
    public static ModuleTargets Targets(Info info, string key = "target_modules") => info.Config[key] switch
    {
        JsonArray a => ModuleTargets.Suffixes(a.Select(e => e!.GetValue<string>()).ToArray()),
        JsonValue v => ModuleTargets.FullMatch(v.GetValue<string>()),
        _ => throw new UserInputException($"{info.ConfigPath}: '{key}' is missing"),
    };

    /// <summary>The value PEFT writes for target lists: the names sorted (PEFT keeps them in a set), or the regex.</summary>
    public static JsonNode TargetsJson(ModuleTargets targets) => targets.Regex is not null
        ? JsonValue.Create(targets.Regex)
        : new JsonArray(targets.Names!.Distinct().Order(StringComparer.Ordinal).Select(t => (JsonNode)JsonValue.Create(t)!).ToArray());
}
