using Forgetless.Configuration;
using Forgetless.Model;
using Forgetless.Peft;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.FineTuning;

/// <summary>A base model with a fine-tuning method applied: what trains, and how to write it out.</summary>
public sealed class TunedModel(CausalLM model, FineTuneMethod method, IReadOnlyList<(string name, Parameter parameter)> trainable,
    IReadOnlyList<string> adaptedModules, PrefixEncoder? prefix) : IDisposable
{
    public CausalLM Model { get; } = model;
    public FineTuneMethod Method { get; } = method;

    /// <summary>The tensors the optimizer updates, with stable names (model paths; <c>prefix.*</c> for prefix tuning).</summary>
    public IReadOnlyList<(string name, Parameter parameter)> Trainable { get; } = trainable;

    /// <summary>Module paths the method wrapped (empty for full, freeze and prefix).</summary>
    public IReadOnlyList<string> AdaptedModules { get; } = adaptedModules;
    public PrefixEncoder? Prefix { get; } = prefix;

    public long TrainableParameters => Trainable.Sum(p => p.parameter.numel());
    public long TotalParameters => Model.parameters().Sum(p => p.numel()) + (Prefix?.parameters().Sum(p => p.numel()) ?? 0);

    /// <summary>Bytes of NF4 weights (qlora) and what they would take in f32; zeros otherwise.</summary>
    public (long Nf4Bytes, long F32Bytes) QuantizedBytes => QLora.WeightBytes(Model);

    public void Dispose()
    {
        Prefix?.Dispose();
        Model.Dispose();
    }
}

/// <summary>
/// Applies the configured method to a freshly loaded base model through the Peft pieces (one injection mechanism
/// for every method). Mistakes a user can make (a target that matches nothing, nothing left to train, an
/// initAdapter of another method) become <see cref="ConfigException"/>s naming the <c>finetune.*</c> key.
/// </summary>
public static class MethodBuilder
{
    public static TunedModel Apply(CausalLM model, FineTuneOptions options, long seed, string? initAdapter = null)
    {
        IReadOnlyList<string> adapted = [];
        PrefixEncoder? prefix = null;
        switch (options.Method)
        {
            case FineTuneMethod.Full:
                if (initAdapter is not null) ApplyEarlierWeights(model, options, initAdapter);
                Freezing.Full(model);
                break;
            case FineTuneMethod.Freeze:
                if (initAdapter is not null) ApplyEarlierWeights(model, options, initAdapter);
                if (options.Freeze.Layers > model.Config.NumHiddenLayers)
                    throw new ConfigException($"finetune.freeze.layers = {options.Freeze.Layers}: the model has only {model.Config.NumHiddenLayers} layers");
                Freezing.FreezeBottom(model, options.Freeze.Layers);
                break;
            case FineTuneMethod.Lora:
            case FineTuneMethod.Qlora:
                adapted = Inject(string.IsNullOrEmpty(options.Lora.TargetRegex) ? "finetune.lora.targetModules" : "finetune.lora.targetRegex", options.LoraTargets(), () => options.Method == FineTuneMethod.Qlora
                    ? QLora.Apply(model, options.LoraTargets(), options.LoraOptions(seed), options.Qlora.DoubleQuant)
                    : Lora.Apply(model, options.LoraTargets(), options.LoraOptions(seed)));
                Freezing.OnlyAdapters(model);
                break;
            case FineTuneMethod.Adapter:
                var targets = ModuleTargets.Suffixes(options.Adapter.TargetModules.ToArray());
                adapted = Inject("finetune.adapter.targetModules", targets, () => Bottleneck.Apply(model, targets,
                    new BottleneckOptions { BottleneckSize = options.Adapter.Size, Activation = options.Adapter.Activation, Seed = seed }));
                Freezing.OnlyAdapters(model);
                break;
            case FineTuneMethod.Prefix:
                foreach (var p in model.parameters()) p.requires_grad = false;
                prefix = new PrefixEncoder(model.Config, new PrefixOptions
                {
                    VirtualTokens = options.Prefix.VirtualTokens, Projection = options.Prefix.Projection,
                    EncoderHiddenSize = options.Prefix.EncoderHiddenSize, Seed = seed,
                });
                model.PrefixKeyValues = prefix;
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(options));
        }

        var trainable = prefix is not null
            ? prefix.AdapterParameters().Select(p => ("prefix." + p.name, p.parameter)).ToList()
            : Freezing.Trainable(model).ToList();
        if (trainable.Count == 0)
            throw new ConfigException($"finetune.method = {FineTuneOptions.Name(options.Method)}: nothing is left to train " +
                                      "(check finetune.freeze.layers); regularizers such as l2sp need trainable parameters too");
        var tuned = new TunedModel(model, options.Method, trainable, adapted, prefix);
        if (initAdapter is not null && options.Method is not (FineTuneMethod.Full or FineTuneMethod.Freeze))
            LoadInitialAdapter(tuned, options, initAdapter);
        return tuned;
    }

    private static IReadOnlyList<string> Inject(string key, ModuleTargets targets, Func<IReadOnlyList<string>> inject)
    {
        try
        {
            return inject();
        }
        catch (InvalidOperationException e) when (e.Message.StartsWith("No module matched", StringComparison.Ordinal)
                                                   || e.Message.Contains("not a Linear", StringComparison.Ordinal))
        {
            throw new ConfigException($"{key} = {targets}: {e.Message}");
        }
    }

    /// <summary>full/freeze continue from the changed weights of an earlier full or freeze run.</summary>
    private static void ApplyEarlierWeights(CausalLM model, FineTuneOptions options, string folder)
    {
        var info = AdapterFolder.Describe(folder);
        if (info.PeftType != AdapterFolder.WeightsType)
            throw new ConfigException($"finetune.initAdapter = {folder}: holds a {info.PeftType} adapter, but finetune.method = " +
                                      $"{FineTuneOptions.Name(options.Method)} continues only the weights of an earlier full or freeze run ({AdapterFolder.WeightsType})");
        AdapterFolder.Apply(model, folder);
    }

    /// <summary>Continues from an earlier adapter of the same method: its tensors replace the fresh ones.</summary>
    private static void LoadInitialAdapter(TunedModel tuned, FineTuneOptions options, string folder)
    {
        var info = AdapterFolder.Describe(folder);
        var expected = options.Method switch
        {
            FineTuneMethod.Lora or FineTuneMethod.Qlora => "LORA",
            FineTuneMethod.Adapter => AdapterFolder.BottleneckType,
            _ => "PREFIX_TUNING",
        };
        if (info.PeftType != expected)
            throw new ConfigException($"finetune.initAdapter = {folder}: holds a {info.PeftType} adapter, but finetune.method = " +
                                      $"{FineTuneOptions.Name(options.Method)} trains {expected}; start from an adapter of the same method");
        try
        {
            if (tuned.Prefix is { } prefix)
            {
                if (prefix.Options.Projection)
                    throw new ConfigException("finetune.initAdapter: a saved prefix has no projection MLP; set finetune.prefix.projection = false to continue it");
                using var table = AdapterFolder.ReadPromptEmbeddings(folder);
                if (!table.shape.SequenceEqual(prefix.embedding.shape))
                    throw new ConfigException($"finetune.initAdapter = {folder}: prompt_embeddings [{string.Join(", ", table.shape)}] does not fit " +
                                              $"[{string.Join(", ", prefix.embedding.shape)}] (finetune.prefix.virtualTokens)");
                using (no_grad()) prefix.embedding.copy_(table);
            }
            else
            {
                PeftAdapter.LoadWeights(folder, tuned.Model);
            }
        }
        catch (InvalidOperationException e)
        {
            throw new ConfigException($"finetune.initAdapter = {folder}: does not fit the configured adapter ({e.Message})");
        }
    }
}
