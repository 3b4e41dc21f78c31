using Forgetless.Model.Architectures;

namespace Forgetless.Model;

/// <summary>Builds the architecture a config names, either empty (for loading) or freshly initialised.</summary>
public static class ModelFactory
{
    private static readonly Dictionary<string, Func<ModelConfig, TorchSharp.torch.Device?, CausalLM>> Constructors = new(StringComparer.Ordinal)
    {
        ["gpt2"] = (c, d) => new GPT2LMHeadModel(c, d),
        ["llama"] = (c, d) => new LlamaForCausalLM(c, d),
        ["mistral"] = (c, d) => new MistralForCausalLM(c, d),
        ["qwen2"] = (c, d) => new Qwen2ForCausalLM(c, d),
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
    /// <param name="device">The meta device builds a skeleton that holds no memory, for a loader to fill (<see cref="ModelFolder"/>).</param>
    public static CausalLM CreateUninitialized(ModelConfig config, TorchSharp.torch.Device? device = null)
    {
        if (!Constructors.TryGetValue(config.ModelType, out var create))
            throw new NotSupportedException(
                $"model_type '{config.ModelType}' is not supported; supported model types: {string.Join(", ", SupportedModelTypes)}");
        var model = create(config, device);
        model.eval();
        return model;
    }
}
