using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace Forgetless.Peft;

/// <summary>
/// Applies a saved adapter folder to a freshly loaded base model, whatever method made it. Every
/// consumer (score, generate, evaluate, distill, package verify) goes through here, so a new
/// method becomes usable everywhere by adding one case.
/// </summary>
public static class AdapterFolder
{
    public const string PeftConfigFile = "adapter_config.json";

    /// <summary>Loads the adapter in <paramref name="folder"/> into <paramref name="model"/> and returns the PEFT type it found.</summary>
    public static string Apply(nn.Module model, string folder)
    {
        string configPath = Path.Combine(folder, PeftConfigFile);
        if (!Directory.Exists(folder)) throw new UserInputException($"{folder}: adapter folder not found");
        if (!File.Exists(configPath)) throw new UserInputException($"{folder}: no {PeftConfigFile}; expected a PEFT adapter folder");
        var config = JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject
                     ?? throw new UserInputException($"{configPath}: expected a JSON object");
        string type = config["peft_type"]?.GetValue<string>()
                      ?? throw new UserInputException($"{configPath}: 'peft_type' is missing");
        switch (type)
        {
            case "LORA":
                PeftAdapter.LoadLora(folder, model);
                return type;
            default:
                throw new UserInputException($"{configPath}: peft_type '{type}' is not supported; supported: LORA");
        }
    }
}
