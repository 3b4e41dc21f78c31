using Forgetless.Model.Devices;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Model.Architectures;

/// <summary>
/// Llama (also SmolLM, and the base of Qwen2 and Mistral): pre-norm decoder with RMSNorm, RoPE,
/// grouped-query attention and a SwiGLU MLP. Field names are the HF checkpoint keys.
/// </summary>
public class LlamaForCausalLM : CausalLM
{
    private readonly LlamaModel model;
    private nn.Module<Tensor, Tensor>? lm_head;

    public LlamaForCausalLM(ModelConfig config, Device? device = null) : this(nameof(LlamaForCausalLM), config, device)
    {
    }

    /// <param name="device">Where the parameters are made: the CPU by default; the meta device for a skeleton to load into.</param>
    protected LlamaForCausalLM(string name, ModelConfig config, Device? device) : base(name, config)
    {
        model = new LlamaModel(config, device);
        // Tied: the output projection is the embedding matrix itself, so there is no lm_head module
        // (a second Parameter object for the same storage would be updated twice by an optimizer).
        lm_head = config.TieWordEmbeddings ? null : nn.Linear(config.HiddenSize, config.VocabSize, hasBias: false, device: device);
        RegisterComponents();
    }

    public override string BaseModelPrefix => "model";

    private protected override Tensor HiddenStates(Tensor inputIds, AttentionContext context, LayerCheckpoint? checkpoint) =>
        model.Forward(inputIds, context, ComputeType, checkpoint);

    private protected override TokenEmbedding InputEmbedding => model.embed_tokens;

    private protected override nn.Module<Tensor, Tensor>? OutputHead => lm_head;

    protected override bool IsNormParameter(string name) => name.EndsWith("norm.weight", StringComparison.Ordinal);
}

internal sealed class LlamaModel : nn.Module
{
    internal readonly TokenEmbedding embed_tokens;
    private readonly ModuleList<LlamaDecoderLayer> layers;
    private readonly RmsNorm norm;
    private readonly RotaryEmbedding rotary;

    public LlamaModel(ModelConfig config, Device? device) : base(nameof(LlamaModel))
    {
        embed_tokens = new TokenEmbedding(config.VocabSize, config.HiddenSize, device);
        layers = nn.ModuleList(Enumerable.Range(0, config.NumHiddenLayers).Select(i => new LlamaDecoderLayer(config, i, device)).ToArray());
        norm = new RmsNorm(config.HiddenSize, config.NormEps, device);
        rotary = new RotaryEmbedding(config);
        RegisterComponents();
    }

    public Tensor Forward(Tensor inputIds, AttentionContext context, ScalarType computeType, LayerCheckpoint? checkpoint)
    {
        var (cos, sin) = rotary.At(context.Positions, computeType);
        checkpoint?.Keep(cos, sin);
        var x = MixedPrecision.As(embed_tokens.forward(inputIds), computeType);
        foreach (var layer in layers)
        {
            // A scope per layer frees the layer's intermediates as soon as it is done (without autograd,
            // nothing else holds them); otherwise peak memory grows with depth.
            using var scope = NewDisposeScope();
            x = (checkpoint is null ? layer.Forward(x, cos, sin, context) : checkpoint.Run(layer, x, (l, h) => l.Forward(h, cos, sin, context)))
                .MoveToOuterDisposeScope();
        }
        return norm.call(x);
    }
}

internal sealed class LlamaDecoderLayer : nn.Module
{
    private readonly RmsNorm input_layernorm;
    private readonly LlamaAttention self_attn;
    private readonly RmsNorm post_attention_layernorm;
    private readonly LlamaMlp mlp;

    public LlamaDecoderLayer(ModelConfig config, int index, Device? device) : base(nameof(LlamaDecoderLayer))
    {
        input_layernorm = new RmsNorm(config.HiddenSize, config.NormEps, device);
        self_attn = new LlamaAttention(config, index, device);
        post_attention_layernorm = new RmsNorm(config.HiddenSize, config.NormEps, device);
        mlp = new LlamaMlp(config, device);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, AttentionContext context)
    {
        x = x.add(self_attn.Forward(input_layernorm.call(x), cos, sin, context), Scalars.One);
        return x.add(mlp.call(post_attention_layernorm.call(x)), Scalars.One);
    }
}

internal sealed class LlamaAttention : nn.Module
{
    private readonly int layerIndex, heads, kvHeads, headDim;
    private nn.Module<Tensor, Tensor> q_proj, k_proj, v_proj, o_proj;

    public LlamaAttention(ModelConfig config, int layerIndex, Device? device) : base(nameof(LlamaAttention))
    {
        this.layerIndex = layerIndex;
        heads = config.NumAttentionHeads;
        kvHeads = config.NumKeyValueHeads;
        headDim = config.HeadDim;
        q_proj = nn.Linear(config.HiddenSize, heads * headDim, hasBias: config.AttentionBias, device: device);
        k_proj = nn.Linear(config.HiddenSize, kvHeads * headDim, hasBias: config.AttentionBias, device: device);
        v_proj = nn.Linear(config.HiddenSize, kvHeads * headDim, hasBias: config.AttentionBias, device: device);
        // Qwen2 puts biases on q/k/v only; Llama's attention_bias covers o_proj too.
        o_proj = nn.Linear(heads * headDim, config.HiddenSize, hasBias: config.AttentionBias && config.ModelType != "qwen2", device: device);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, AttentionContext context)
    {
        long b = x.shape[0], t = x.shape[1];
        var q = MixedPrecision.Project(q_proj, x).view(b, t, heads, headDim).transpose(1, 2);
        var k = MixedPrecision.Project(k_proj, x).view(b, t, kvHeads, headDim).transpose(1, 2);
        var v = MixedPrecision.Project(v_proj, x).view(b, t, kvHeads, headDim).transpose(1, 2);
        q = RotaryEmbedding.Apply(q, cos, sin);
        k = RotaryEmbedding.Apply(k, cos, sin);
        var y = context.Attend(layerIndex, q, k, v);
        return MixedPrecision.Project(o_proj, y.transpose(1, 2).reshape(b, t, heads * headDim));
    }
}

internal sealed class LlamaMlp : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> gate_proj, up_proj, down_proj;

    public LlamaMlp(ModelConfig config, Device? device) : base(nameof(LlamaMlp))
    {
        gate_proj = nn.Linear(config.HiddenSize, config.IntermediateSize, hasBias: config.MlpBias, device: device);
        up_proj = nn.Linear(config.HiddenSize, config.IntermediateSize, hasBias: config.MlpBias, device: device);
        down_proj = nn.Linear(config.IntermediateSize, config.HiddenSize, hasBias: config.MlpBias, device: device);
        RegisterComponents();
    }

    // SwiGLU: silu(gate) * up, projected back down.
    public override Tensor forward(Tensor x) =>
        MixedPrecision.Project(down_proj, nn.functional.silu(MixedPrecision.Project(gate_proj, x)) * MixedPrecision.Project(up_proj, x));
}
