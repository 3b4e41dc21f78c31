using System.Globalization;
using System.Text.Json.Nodes;
using Forgetless.Model;
using Forgetless.Model.Devices;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Peft;

/// <summary>Options of prefix tuning (PEFT's PrefixTuningConfig names in comments).</summary>
public sealed record PrefixOptions
{
    /// <summary><c>num_virtual_tokens</c>.</summary>
    public int VirtualTokens { get; init; } = 16;
    /// <summary><c>prefix_projection</c>: an MLP (Linear, tanh, Linear) reparameterises the prefix while training.</summary>
    public bool Projection { get; init; }
    /// <summary><c>encoder_hidden_size</c>.</summary>
    public int EncoderHiddenSize { get; init; } = 128;
    public long Seed { get; init; }
}

/// <summary>
/// Prefix tuning (Li and Liang 2021) in PEFT's layout: one table <c>prompt_embeddings</c> [P, L·2·token_dim] whose
/// row p holds, for layer l, the key at columns [(2l)·token_dim, (2l+1)·token_dim) and the value at the next
/// token_dim columns, each split into heads as [heads, head_dim]. For grouped-query models PEFT sets
/// token_dim = kv_heads·head_dim and num_attention_heads = kv_heads (a prefix is one key/value per kv head), and so
/// do we; for plain multi-head models token_dim = hidden size.
/// <para>
/// Initialisation (ours; PEFT draws N(0, 1) from nn.Embedding): keys N(0, 0.02²), values 0. A prefix can never be an
/// exact no-op: the P extra keys take softmax mass from the real tokens whatever their values are. With zero values
/// a fresh prefix only scales each attention output by (1 − its prefix mass), a small change — see docs/finetune.md.
/// </para>
/// </summary>
public sealed class PrefixEncoder : nn.Module, IPrefixKeyValues, IAdapterLayer, IComputesIn
{
    private static readonly Scalar InitStd = 0.02f.ToScalar(); // the keys start N(0, 0.02²); held (Scalars.cs says why)

    public readonly Parameter embedding;
    private readonly Linear? transform_0;
    private readonly Linear? transform_2;
    private readonly int layers;
    private readonly int heads;
    private readonly int headDim;

    public PrefixOptions Options { get; }

    /// <summary>The type of the keys and values handed to attention: the model's compute type (the table trains in f32).</summary>
    public ScalarType ComputeType { get; set; } = ScalarType.Float32;
    public int Length => Options.VirtualTokens;
    public int TokenDim => heads * headDim;
    public int NumLayers => layers;
    public int NumHeads => heads;

    public PrefixEncoder(ModelConfig config, PrefixOptions options) : base(nameof(PrefixEncoder))
    {
        if (options.VirtualTokens <= 0) throw new ArgumentException("num_virtual_tokens must be positive.");
        Options = options;
        layers = config.NumHiddenLayers;
        heads = config.NumKeyValueHeads;
        headDim = config.HeadDim;
        int width = layers * 2 * TokenDim;
        using (no_grad())
        {
            using var g = new Generator(ModuleSeed.For(options.Seed, "prefix"));
            if (options.Projection)
            {
                // PEFT: embedding [P, token_dim] → Linear(token_dim, h) → tanh → Linear(h, L·2·token_dim).
                embedding = new Parameter(randn(new long[] { options.VirtualTokens, TokenDim }, generator: g).mul_(InitStd), requires_grad: true);
                transform_0 = nn.Linear(TokenDim, options.EncoderHiddenSize);
                transform_2 = nn.Linear(options.EncoderHiddenSize, width);
                using var w0 = ModuleSeed.KaimingUniformA5(options.EncoderHiddenSize, TokenDim, g);
                transform_0.weight.copy_(w0);
                transform_0.bias!.zero_();
                transform_2.weight.zero_();
                transform_2.bias!.zero_();
                // Keys start small and random through the bias, values at zero.
                using var table = KeyValueInit(options.VirtualTokens, g);
                using var keys = table.mean(new long[] { 0 });
                transform_2.bias!.copy_(keys);
            }
            else
            {
                embedding = new Parameter(KeyValueInit(options.VirtualTokens, g), requires_grad: true);
            }
        }
        RegisterComponents();
        ModuleSeed.DetachFromScopes(this);
    }

    /// <summary>A plain (no projection) prefix holding <paramref name="promptEmbeddings"/> [P, L·2·token_dim], as PEFT loads it for inference.</summary>
    public static PrefixEncoder FromPromptEmbeddings(ModelConfig config, Tensor promptEmbeddings)
    {
        var prefix = new PrefixEncoder(config, new PrefixOptions { VirtualTokens = (int)promptEmbeddings.shape[0] });
        if (!promptEmbeddings.shape.SequenceEqual(prefix.embedding.shape))
            throw new InvalidDataException(
                $"prompt_embeddings has shape [{string.Join(", ", promptEmbeddings.shape)}]; this model needs [{string.Join(", ", prefix.embedding.shape)}] " +
                $"(num_layers {config.NumHiddenLayers} × 2 × kv_heads {config.NumKeyValueHeads} × head_dim {config.HeadDim})");
        using (no_grad()) prefix.embedding.copy_(promptEmbeddings);
        return prefix;
    }

    private Tensor KeyValueInit(int p, Generator g)
    {
        using var scope = NewDisposeScope();
        var t = zeros(p, layers, 2, TokenDim);
        t.select(2, 0).copy_(randn(new long[] { p, layers, TokenDim }, generator: g).mul_(InitStd));
        return t.reshape(p, layers * 2 * TokenDim).MoveToOuterDisposeScope();
    }

    public IEnumerable<(string name, Parameter parameter)> AdapterParameters()
    {
        yield return ("embedding.weight", embedding);
        if (transform_0 is not null)
        {
            yield return ("transform.0.weight", transform_0.weight);
            yield return ("transform.0.bias", transform_0.bias!);
            yield return ("transform.2.weight", transform_2!.weight);
            yield return ("transform.2.bias", transform_2.bias!);
        }
    }

    /// <summary>The table PEFT saves: [P, L·2·token_dim] (through the projection when there is one).</summary>
    public Tensor PromptEmbeddings()
    {
        if (transform_0 is null) return embedding;
        using var scope = NewDisposeScope();
        return transform_2!.forward(transform_0.forward(embedding).tanh()).MoveToOuterDisposeScope();
    }

    public (Tensor Keys, Tensor Values) ForLayer(int layer, long batchSize)
    {
        // [P, L, 2, heads, head_dim] → this layer's keys and values as [B, heads, P, head_dim].
        // In the activations' type: keys and values join the layer's own in one attention.
        var table = MixedPrecision.As(PromptEmbeddings(), ComputeType).view(Length, layers, 2, heads, headDim);
        var keys = table.select(1, layer).select(1, 0).permute(1, 0, 2).unsqueeze(0).expand(batchSize, -1, -1, -1);
        var values = table.select(1, layer).select(1, 1).permute(1, 0, 2).unsqueeze(0).expand(batchSize, -1, -1, -1);
        return (keys, values);
    }

    /// <summary>PEFT's adapter_config.json for PREFIX_TUNING.</summary>
    public JsonObject Config(ModelConfig config, string? baseModel) => new()
    {
        ["base_model_name_or_path"] = baseModel,
        ["encoder_hidden_size"] = Options.EncoderHiddenSize,
        ["inference_mode"] = true,
        ["num_attention_heads"] = heads,
        ["num_layers"] = layers,
        ["num_transformer_submodules"] = 1,
        ["num_virtual_tokens"] = Length,
        ["peft_type"] = PrefixMethod.Type,
        ["prefix_projection"] = Options.Projection,
        ["revision"] = null,
        ["task_type"] = "CAUSAL_LM",
        ["token_dim"] = TokenDim,
    };

    /// <summary>Checks a PREFIX_TUNING config against the model it is applied to.</summary>
    public static void CheckConfig(JsonObject config, ModelConfig model, string source)
    {
        int Int(string key) => config[key]?.GetValue<int>() ?? throw new InvalidDataException($"{source}: '{key}' is missing");
        var expected = new[] { ("num_layers", model.NumHiddenLayers), ("token_dim", model.NumKeyValueHeads * model.HeadDim), ("num_attention_heads", model.NumKeyValueHeads) };
        foreach (var (key, value) in expected)
            if (Int(key) != value)
                throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                    $"{source}: {key} = {Int(key)}, but this model needs {value} (prefix keys/values per kv head: token_dim = kv_heads × head_dim)"));
    }
}
