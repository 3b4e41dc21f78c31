using Forgetless.Model.Architectures;

namespace Forgetless.Model;

/// <summary>Builds the architecture a config names, either empty (for loading) or freshly initialised.</summary>
public static class ModelFactory
{
    private static readonly Dictionary<string, Func<ModelConfig, CausalLM>> Constructors = new(StringComparer.Ordinal)
    {
        ["gpt2"] = c => new GPT2LMHeadModel(c),
        ["llama"] = c => new LlamaForCausalLM(c),
        ["mistral"] = c => new MistralForCausalLM(c),
        ["qwen2"] = c => new Qwen2ForCausalLM(c),
    };

    public static IReadOnlyCollection<string> SupportedModelTypes { get; } = Constructors.Keys.Order(StringComparer.Ordinal).ToArray();

    /// <summary>A model with HF-style N(0, initializer_range) weights; the same seed gives the same weights.</summary>
    public static CausalLM Create(ModelConfig config, long seed)
    {
        var model = CreateUninitialized(config);
        model.InitializeWeights(seed);
        return model;
    }

    /// <summary>A model whose weights are whatever TorchSharp's constructors chose; load a checkpoint into it.</summary>
    public static CausalLM CreateUninitialized(ModelConfig config)
    {
        if (!Constructors.TryGetValue(config.ModelType, out var create))
            throw new NotSupportedException(
                $"model_type '{config.ModelType}' is not supported; supported model types: {string.Join(", ", SupportedModelTypes)}");
        var model = create(config);
        model.eval();
        return model;
    }
}
