using Forgetless.Model.Devices;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Model.Architectures;

/// <summary>
/// GPT-2: learned positions, pre-norm LayerNorm blocks, fused q/k/v projection and a gelu_new MLP.
/// HF stores c_attn, c_proj and c_fc as Conv1D with weight [in, out]; here they are ordinary Linear layers
/// ([out, in]) and the loader/saver transpose them, so adapter code sees one kind of projection.
/// </summary>
public sealed class GPT2LMHeadModel : CausalLM
{
    private readonly Gpt2Model transformer;
    private nn.Module<Tensor, Tensor>? lm_head;
    private readonly HashSet<string> fanInFanOut;

    public GPT2LMHeadModel(ModelConfig config, Device? device = null) : base(nameof(GPT2LMHeadModel), config)
    {
        transformer = new Gpt2Model(config, device);
        lm_head = config.TieWordEmbeddings ? null : nn.Linear(config.HiddenSize, config.VocabSize, hasBias: false, device: device);
        fanInFanOut = Enumerable.Range(0, config.NumHiddenLayers)
            .SelectMany(i => new[] { "attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj" }.Select(m => $"transformer.h.{i}.{m}"))
            .ToHashSet(StringComparer.Ordinal);
        RegisterComponents();
    }

    public override string BaseModelPrefix => "transformer";

    public override IReadOnlySet<string> FanInFanOutModules => fanInFanOut;

    // Learned positions: a prefix's virtual tokens use up positions the real tokens then lack.
    public override int ContextLength => Config.MaxPositionEmbeddings - (PrefixKeyValues?.Length ?? 0);

    protected override void CheckSequenceLength(int totalLength)
    {
        if (totalLength > Config.MaxPositionEmbeddings)
            throw new ArgumentException($"gpt2: sequence of {totalLength} tokens (virtual prefix tokens included) exceeds n_positions {Config.MaxPositionEmbeddings}");
    }

    private protected override Tensor HiddenStates(Tensor inputIds, AttentionContext context, LayerCheckpoint? checkpoint) =>
        transformer.Forward(inputIds, context, ComputeType, checkpoint);

    private protected override TokenEmbedding InputEmbedding => transformer.wte;

    private protected override nn.Module<Tensor, Tensor>? OutputHead => lm_head;

    // HF's causal-mask buffers, present in older checkpoints.
    protected override bool IsIgnorableCheckpointKey(string key) =>
        base.IsIgnorableCheckpointKey(key)
        || key.EndsWith(".attn.bias", StringComparison.Ordinal)
        || key.EndsWith(".attn.masked_bias", StringComparison.Ordinal);

    protected override bool IsNormParameter(string name) => name.Contains(".ln_", StringComparison.Ordinal);

    // GPT-2 scales residual projections by 1/sqrt(2 * n_layer) so the residual stream's variance
    // does not grow with depth.
    protected override double InitStd(string parameterName) =>
        parameterName.EndsWith("c_proj.weight", StringComparison.Ordinal)
            ? Config.InitializerRange / Math.Sqrt(2.0 * Config.NumHiddenLayers)
            : Config.InitializerRange;
}

internal sealed class Gpt2Model : nn.Module
{
    internal readonly TokenEmbedding wte;
    private readonly TokenEmbedding wpe;
    private readonly ModuleList<Gpt2Block> h;
    private readonly LayerNorm ln_f;

    public Gpt2Model(ModelConfig config, Device? device) : base(nameof(Gpt2Model))
    {
        wte = new TokenEmbedding(config.VocabSize, config.HiddenSize, device);
        wpe = new TokenEmbedding(config.MaxPositionEmbeddings, config.HiddenSize, device);
        h = nn.ModuleList(Enumerable.Range(0, config.NumHiddenLayers).Select(i => new Gpt2Block(config, i, device)).ToArray());
        ln_f = nn.LayerNorm(config.HiddenSize, config.NormEps, device: device);
        RegisterComponents();
    }

    public Tensor Forward(Tensor inputIds, AttentionContext context, ScalarType computeType, LayerCheckpoint? checkpoint)
    {
        var x = MixedPrecision.As(wte.forward(inputIds).add(wpe.forward(context.Positions), Scalars.One), computeType);
        foreach (var block in h)
        {
            // Frees each block's intermediates when it is done (see LlamaModel.Forward).
            using var scope = NewDisposeScope();
            x = (checkpoint is null ? block.Forward(x, context) : checkpoint.Run(block, x, (l, y) => l.Forward(y, context))).MoveToOuterDisposeScope();
        }
        return Norm(ln_f, x);
    }

    /// <summary>A LayerNorm in the activations' type (its weights are cast when they train in f32 beside bf16 activations).</summary>
    internal static Tensor Norm(LayerNorm norm, Tensor x)
    {
        if (norm.weight!.dtype == x.dtype) return norm.call(x);
        using var w = norm.weight.to(x.dtype);
        using var b = norm.bias?.to(x.dtype);
        return nn.functional.layer_norm(x, [x.shape[^1]], w, b, norm.eps);
    }
}

internal sealed class Gpt2Block : nn.Module
{
    private readonly LayerNorm ln_1;
    private readonly Gpt2Attention attn;
    private readonly LayerNorm ln_2;
    private readonly Gpt2Mlp mlp;

    public Gpt2Block(ModelConfig config, int index, Device? device) : base(nameof(Gpt2Block))
    {
        ln_1 = nn.LayerNorm(config.HiddenSize, config.NormEps, device: device);
        attn = new Gpt2Attention(config, index, device);
        ln_2 = nn.LayerNorm(config.HiddenSize, config.NormEps, device: device);
        mlp = new Gpt2Mlp(config, device);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, AttentionContext context)
    {
        x = x.add(attn.Forward(Gpt2Model.Norm(ln_1, x), context), Scalars.One);
        return x.add(mlp.call(Gpt2Model.Norm(ln_2, x)), Scalars.One);
    }
}

internal sealed class Gpt2Attention : nn.Module
{
    private readonly int layerIndex, heads, headDim;
    private nn.Module<Tensor, Tensor> c_attn, c_proj;

    public Gpt2Attention(ModelConfig config, int layerIndex, Device? device) : base(nameof(Gpt2Attention))
    {
        this.layerIndex = layerIndex;
        heads = config.NumAttentionHeads;
        headDim = config.HeadDim;
        c_attn = nn.Linear(config.HiddenSize, 3 * config.HiddenSize, device: device);
        c_proj = nn.Linear(config.HiddenSize, config.HiddenSize, device: device);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, AttentionContext context)
    {
        long b = x.shape[0], t = x.shape[1], d = heads * headDim;
        var qkv = MixedPrecision.Project(c_attn, x);
        Tensor Heads(long start) => qkv.narrow(2, start, d).view(b, t, heads, headDim).transpose(1, 2);
        var y = context.Attend(layerIndex, Heads(0), Heads(d), Heads(2 * d));
        return MixedPrecision.Project(c_proj, y.transpose(1, 2).reshape(b, t, d));
    }
}

internal sealed class Gpt2Mlp : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> c_fc, c_proj;

    public Gpt2Mlp(ModelConfig config, Device? device) : base(nameof(Gpt2Mlp))
    {
        c_fc = nn.Linear(config.HiddenSize, config.IntermediateSize, device: device);
        c_proj = nn.Linear(config.IntermediateSize, config.HiddenSize, device: device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => MixedPrecision.Project(c_proj, GeluNew(MixedPrecision.Project(c_fc, x)));

    /// <summary>GPT-2's tanh approximation of GELU ("gelu_new"): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).</summary>
    private static Tensor GeluNew(Tensor x) =>
        x.mul(Scalars.Half).mul(tanh(x.add(x.pow(Three).mul(CubeWeight), Scalars.One).mul(RootTwoOverPi)).add(OneD, Scalars.One));

    // Held for every call (Scalars.cs says why); doubles, as the formula's literals are.
    private static readonly Scalar Three = 3.ToScalar(), CubeWeight = 0.044715.ToScalar(), RootTwoOverPi = Math.Sqrt(2.0 / Math.PI).ToScalar(), OneD = 1.0.ToScalar();
}
