using Forgetless.Model;
using static TorchSharp.torch;

namespace Forgetless.Peft;

/// <summary>
/// The base model with an adapter folded in, as a plain Hugging Face model folder (config.json, model.safetensors,
/// generation and tokenizer files of the base): load the base, apply the folder, let its method fold itself into the
/// weights (<see cref="PeftMethod.Merge"/>), then copy the effective weights into a plain model of the base
/// architecture and save that. Serves both <c>finetune.merge</c> and <c>package.exportMerged</c>.
/// </summary>
public static class MergedModel
{
    /// <param name="key">The setting that asked for the merge, for the refusal message.</param>
    public static void Write(string adapterFolder, string baseModel, string target, string key)
    {
        var info = AdapterFolder.Describe(adapterFolder);
        var method = AdapterFolder.MethodOf(info);
        if (method.MergeRefusal is { } why)
            throw new UserInputException($"{key}: {adapterFolder} is a {method.Name} adapter and cannot be merged into the base weights: {why}. " +
                                         $"Set {key}=false; the adapter folder itself still loads with PeftModel.from_pretrained");
        var loaded = ModelFolder.Load(baseModel, loadTokenizer: false);
        using var model = loaded.Model;
        method.Load(model, info);
        method.Merge(model);
        using var plain = ModelFolder.LoadModel(baseModel);
        // A merged layer still wraps its base: its effective weight sits under ".base_layer.".
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
