using System.Text.Json.Nodes;
using Forgetless.Model;
using Forgetless.Model.Safetensors;
using Forgetless.Peft;
using static TorchSharp.torch;
using AtomicFile = Forgetless.Runs.AtomicFile;

namespace Forgetless.FineTuning;

/// <summary>
/// Writes the trained adapter folder of any method (formats in <see cref="AdapterFolder"/> and docs/finetune.md).
/// Same tensors and options give the same bytes.
/// </summary>
public static class AdapterWriter
{
    public static void Write(TunedModel tuned, FineTuneOptions options, long seed, string folder, string? baseModel)
    {
        Directory.CreateDirectory(folder);
        var model = tuned.Model;
        switch (tuned.Method)
        {
            case FineTuneMethod.Lora:
            case FineTuneMethod.Qlora:
                PeftAdapter.SaveLora(folder, model, new LoraAdapterConfig
                {
                    Targets = options.LoraTargets(),
                    Options = options.LoraOptions(seed),
                    BaseModelNameOrPath = baseModel,
                    FanInFanOut = tuned.AdaptedModules.Any(model.FanInFanOutModules.Contains),
                });
                break;
            case FineTuneMethod.Adapter:
                PeftAdapter.SaveWeights(folder, model);
                WriteConfig(folder, new JsonObject
                {
                    ["activation"] = options.Adapter.Activation.ToString().ToLowerInvariant(),
                    ["base_model_name_or_path"] = baseModel,
                    ["bottleneck_size"] = options.Adapter.Size,
                    ["method"] = "adapter",
                    ["peft_type"] = AdapterFolder.BottleneckType,
                    ["target_modules"] = new JsonArray(options.Adapter.TargetModules.Select(t => (JsonNode)t).ToArray()),
                    ["task_type"] = "CAUSAL_LM",
                });
                break;
            case FineTuneMethod.Prefix:
            {
                var prefix = tuned.Prefix!;
                using var _ = no_grad();
                using var table = prefix.PromptEmbeddings().detach().clone();
                SafetensorsWriter.Write(Path.Combine(folder, PeftAdapter.WeightsFile),
                    new Dictionary<string, Tensor> { [AdapterFolder.PromptEmbeddingsKey] = table }, SafetensorsDType.Keep,
                    new Dictionary<string, string> { ["format"] = "pt" });
                AtomicFile.WriteAllText(Path.Combine(folder, AdapterFolder.PeftConfigFile), prefix.ConfigJson(model.Config, baseModel));
                break;
            }
            case FineTuneMethod.Full:
            case FineTuneMethod.Freeze:
            {
                var names = tuned.Trainable.Select(t => t.name).ToHashSet(StringComparer.Ordinal);
                var changed = model.CheckpointTensors().Where(kv => names.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
                SafetensorsWriter.Write(Path.Combine(folder, PeftAdapter.WeightsFile), changed, SafetensorsDType.Keep,
                    new Dictionary<string, string> { ["format"] = "pt", ["forgetless.method"] = FineTuneOptions.Name(tuned.Method) });
                WriteConfig(folder, new JsonObject
                {
                    ["base_model_name_or_path"] = baseModel,
                    ["frozen_layers"] = tuned.Method == FineTuneMethod.Freeze ? options.Freeze.Layers : 0,
                    ["method"] = FineTuneOptions.Name(tuned.Method),
                    ["peft_type"] = AdapterFolder.WeightsType,
                    ["task_type"] = "CAUSAL_LM",
                    ["tensors"] = changed.Count,
                });
                break;
            }
        }
    }

    private static void WriteConfig(string folder, JsonObject config) =>
        AtomicFile.WriteAllText(Path.Combine(folder, AdapterFolder.PeftConfigFile),
            config.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n");

    /// <summary>The base model with the adapter folded in (lora without NF4, full, freeze), as an HF model folder.</summary>
    public static void WriteMerged(TunedModel tuned, string folder, string baseModelDirectory)
    {
        if (tuned.Method is FineTuneMethod.Lora) Lora.MergeAll(tuned.Model);
        try
        {
            // A merged LoRA still holds its wrappers; save the plain weights under the base names.
            var merged = ModelFolder.LoadModel(baseModelDirectory);
            using (merged)
            {
                var source = tuned.Model.named_parameters().ToDictionary(p => p.name.Replace(".base_layer.", ".", StringComparison.Ordinal), p => p.parameter);
                using (no_grad())
                    foreach (var (name, p) in merged.named_parameters())
                        p.copy_(source[name]);
                ModelFolder.Save(merged, folder, new ModelSaveOptions { TokenizerDirectory = baseModelDirectory });
            }
        }
        finally
        {
            if (tuned.Method is FineTuneMethod.Lora) Lora.UnmergeAll(tuned.Model);
        }
    }
}
