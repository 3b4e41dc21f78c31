using System.Text.Json.Nodes;
using Forgetless.Model;
using Forgetless.Model.Safetensors;
using static TorchSharp.torch;

namespace Forgetless.Peft;

/// <summary>
/// The folder of methods that train base weights (full, freeze): <c>FORGETLESS_WEIGHTS</c>, the changed tensors under
/// their HF checkpoint keys (GPT-2 Conv1D weights in [in, out], as the checkpoint stores them) in
/// <c>adapter_model.safetensors</c>, and a config naming the method. Not a PEFT method: PEFT has no folder for
/// changed base weights.
/// </summary>
public static class ChangedWeights
{
    public const string PeftType = "FORGETLESS_WEIGHTS";

    public static void Save(TunedModel tuned, string folder, string? baseModel, int frozenLayers)
    {
        Directory.CreateDirectory(folder);
        var names = tuned.Trainable.Select(t => t.name).ToHashSet(StringComparer.Ordinal);
        var changed = tuned.Model.CheckpointTensors().Where(kv => names.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        SafetensorsWriter.Write(Path.Combine(folder, AdapterTensors.WeightsFile), changed, SafetensorsDType.Keep,
            new Dictionary<string, string> { ["format"] = "pt", ["forgetless.method"] = tuned.Method.Name });
        AdapterFolder.WriteConfig(folder, new JsonObject
        {
            ["base_model_name_or_path"] = baseModel,
            ["frozen_layers"] = frozenLayers,
            ["method"] = tuned.Method.Name,
            ["peft_type"] = PeftType,
            ["task_type"] = "CAUSAL_LM",
            ["tensors"] = changed.Count,
        });
    }

    /// <summary>Copies the folder's tensors into the model's weights, checking names and shapes.</summary>
    public static void Apply(CausalLM model, AdapterFolder.Info folder)
    {
        var path = folder.WeightsPath;
        if (!File.Exists(path)) throw new UserInputException($"{folder.Folder}: no {AdapterTensors.WeightsFile}");
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
}
