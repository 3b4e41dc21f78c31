using Forgetless.Configuration;
using Forgetless.Model;
using Forgetless.Model.Safetensors;
using static TorchSharp.torch;

namespace Forgetless.Peft;

/// <summary>
/// Prefix tuning (Li and Liang 2021) in PEFT's PREFIX_TUNING format: every attention layer gets trained keys and values
/// for P virtual tokens in front of the sequence (<see cref="PrefixEncoder"/>); the base model stays frozen. The folder
/// holds one tensor, <c>prompt_embeddings</c> [P, L·2·token_dim] (through the projection MLP when one trained).
/// </summary>
public sealed class PrefixMethod : PeftMethod
{
    public const string Type = "PREFIX_TUNING";
    public const string PromptEmbeddingsKey = "prompt_embeddings";

    public override string Name => "prefix";
    public override string Summary => "trained key/value prefixes for every attention layer; PEFT's PREFIX_TUNING format";
    public override string PeftType => Type;
    public override IReadOnlyList<(string Name, System.Type Options)> Sections => [("prefix", typeof(PrefixSection))];
    public override string MergeRefusal => "prefix tuning adds attention keys and values; there is no weight to fold them into";

    protected override TunedModel Inject(CausalLM model, PluginSections sections, long seed)
    {
        var section = sections.Get<PrefixSection>("prefix");
        foreach (var p in model.parameters()) p.requires_grad = false;
        var prefix = new PrefixEncoder(model.Config, new PrefixOptions
        {
            VirtualTokens = section.VirtualTokens, Projection = section.Projection, EncoderHiddenSize = section.EncoderHiddenSize, Seed = seed,
        });
        model.PrefixKeyValues = prefix;
        return new TunedModel(model, this, prefix.AdapterParameters().Select(p => ("prefix." + p.name, p.parameter)).ToList(), [], sections);
    }

    /// <summary>The prefix encoder a tuned model carries.</summary>
    public static PrefixEncoder Encoder(TunedModel tuned) => tuned.Model.PrefixKeyValues as PrefixEncoder
        ?? throw new InvalidOperationException("the model carries no prefix encoder");

    protected override void Continue(TunedModel tuned, AdapterFolder.Info earlier)
    {
        RequireType(earlier, $"trains {Type}; start from an adapter of the same method");
        var prefix = Encoder(tuned);
        if (prefix.Options.Projection)
            throw new ConfigException("finetune.initAdapter: a saved prefix has no projection MLP; set finetune.prefix.projection = false to continue it");
        using var table = ReadPromptEmbeddings(earlier);
        if (!table.shape.SequenceEqual(prefix.embedding.shape))
            throw new ConfigException($"finetune.initAdapter = {earlier.Folder}: prompt_embeddings [{string.Join(", ", table.shape)}] does not fit " +
                                      $"[{string.Join(", ", prefix.embedding.shape)}] (finetune.prefix.virtualTokens)");
        using (no_grad()) prefix.embedding.copy_(table);
    }

    public override void Save(TunedModel tuned, string folder, string? baseModel)
    {
        var prefix = Encoder(tuned);
        Directory.CreateDirectory(folder);
        using (no_grad())
        {
            using var table = prefix.PromptEmbeddings().detach().clone();
            SafetensorsWriter.Write(Path.Combine(folder, AdapterTensors.WeightsFile), new Dictionary<string, Tensor> { [PromptEmbeddingsKey] = table },
                SafetensorsDType.Keep, new Dictionary<string, string> { ["format"] = "pt" });
        }
        AdapterFolder.WriteConfig(folder, prefix.Config(tuned.Model.Config, baseModel));
    }

    public override void Load(CausalLM model, AdapterFolder.Info folder)
    {
        PrefixEncoder.CheckConfig(folder.Config, model.Config, folder.ConfigPath);
        using var table = ReadPromptEmbeddings(folder);
        var prefix = PrefixEncoder.FromPromptEmbeddings(model.Config, table);
        foreach (var p in prefix.parameters()) p.requires_grad = false;
        model.PrefixKeyValues = prefix;
    }

    /// <summary>The <c>prompt_embeddings</c> tensor of a PREFIX_TUNING folder (the caller owns it).</summary>
    public static Tensor ReadPromptEmbeddings(AdapterFolder.Info folder)
    {
        var path = folder.WeightsPath;
        if (!File.Exists(path)) throw new UserInputException($"{folder.Folder}: no {AdapterTensors.WeightsFile}");
        var file = SafetensorsFile.Open(path);
        if (!file.Entries.ContainsKey(PromptEmbeddingsKey)) throw new UserInputException($"{path}: no '{PromptEmbeddingsKey}' tensor");
        return file.ReadTensor(PromptEmbeddingsKey);
    }
}
