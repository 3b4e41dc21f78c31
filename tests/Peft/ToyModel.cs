using Forgetless.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Tests.Peft;

// A two-layer toy that follows the model contract: projections are Linear modules held in fields named like
// the HF key segment (declared Module<Tensor, Tensor> so adapters can replace them), HF-style paths
// model.layers.N.self_attn.q_proj etc.

internal sealed class ToyAttention : nn.Module<Tensor, Tensor>
{
    public nn.Module<Tensor, Tensor> q_proj, k_proj, v_proj, o_proj;

    public ToyAttention(long d) : base(nameof(ToyAttention))
    {
        q_proj = nn.Linear(d, d, hasBias: false);
        k_proj = nn.Linear(d, d, hasBias: false);
        v_proj = nn.Linear(d, d, hasBias: true);
        o_proj = nn.Linear(d, d, hasBias: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) =>
        o_proj.forward((nn.functional.silu(q_proj.forward(x)) * k_proj.forward(x)).add(v_proj.forward(x), Scalars.One));
}

internal sealed class ToyMlp : nn.Module<Tensor, Tensor>
{
    public nn.Module<Tensor, Tensor> gate_proj, up_proj, down_proj;

    public ToyMlp(long d, long hidden) : base(nameof(ToyMlp))
    {
        gate_proj = nn.Linear(d, hidden, hasBias: false);
        up_proj = nn.Linear(d, hidden, hasBias: false);
        down_proj = nn.Linear(hidden, d, hasBias: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => down_proj.forward(nn.functional.silu(gate_proj.forward(x)) * up_proj.forward(x));
}

internal sealed class ToyLayer : nn.Module<Tensor, Tensor>
{
    public ToyAttention self_attn;
    public ToyMlp mlp;
    public LayerNorm input_layernorm;

    public ToyLayer(long d) : base(nameof(ToyLayer))
    {
        self_attn = new ToyAttention(d);
        mlp = new ToyMlp(d, 2 * d);
        input_layernorm = nn.LayerNorm(d);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        var h = x.add(self_attn.forward(input_layernorm.forward(x)), Scalars.One);
        return h.add(mlp.forward(h), Scalars.One);
    }
}

internal sealed class ToyBody : nn.Module<Tensor, Tensor>
{
    public Forgetless.Model.TokenEmbedding embed_tokens;
    public ModuleList<ToyLayer> layers;
    public LayerNorm norm;

    public ToyBody(long vocab, long d, int nLayers) : base(nameof(ToyBody))
    {
        embed_tokens = new Forgetless.Model.TokenEmbedding(vocab, d);
        using (no_grad()) embed_tokens.weight.normal_(); // N(0, 1), as nn.Embedding initialises its table
        layers = nn.ModuleList(Enumerable.Range(0, nLayers).Select(_ => new ToyLayer(d)).ToArray());
        norm = nn.LayerNorm(d);
        RegisterComponents();
    }

    public override Tensor forward(Tensor ids)
    {
        var h = embed_tokens.forward(ids);
        foreach (var l in layers) h = l.forward(h);
        return norm.forward(h);
    }
}

/// <summary>ToyLm: model.embed_tokens, model.layers.N.{self_attn,mlp}.*_proj, model.norm, lm_head.</summary>
internal sealed class ToyLm : nn.Module<Tensor, Tensor>
{
    public ToyBody model;
    public nn.Module<Tensor, Tensor> lm_head;

    public const long Vocab = 11, Dim = 8;

    public ToyLm(int nLayers = 2, long seed = 1) : base(nameof(ToyLm))
    {
        torch.manual_seed(seed);
        model = new ToyBody(Vocab, Dim, nLayers);
        lm_head = nn.Linear(Dim, Vocab, hasBias: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor ids)
    {
        using var scope = NewDisposeScope();
        return lm_head.forward(model.forward(ids)).MoveToOuterDisposeScope();
    }

    public static Tensor SampleIds(long seed = 7)
    {
        using var g = new Generator((ulong)seed);
        return randint(0, Vocab, new long[] { 2, 5 }, generator: g);
    }

    /// <summary>Copies of every parameter and buffer, for bit-identity checks.</summary>
    public static Dictionary<string, float[]> Snapshot(nn.Module m) =>
        m.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().data<float>().ToArray());
}

/// <summary>A parent whose projection field is declared as the sealed Linear type: adapters cannot replace it.</summary>
internal sealed class LinearTypedField : nn.Module<Tensor, Tensor>
{
    public Linear q_proj;

    public LinearTypedField() : base(nameof(LinearTypedField))
    {
        q_proj = nn.Linear(4, 4);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => q_proj.forward(x);
}

internal static class TensorAssert
{
    public static float MaxAbsDiff(Tensor a, Tensor b)
    {
        using var d = (a - b).abs().max();
        return d.item<float>();
    }

    public static float[] Values(Tensor t) => t.detach().contiguous().data<float>().ToArray();
}

internal static class ToyCopy
{
    /// <summary>A second ToyLm with the same parameter values (independent of the global RNG).</summary>
    public static ToyLm Twin(ToyLm source)
    {
        var twin = new ToyLm(source.model.layers.Count);
        var src = source.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        using var _ = no_grad();
        foreach (var (name, p) in twin.named_parameters()) p.copy_(src[name]);
        return twin;
    }
}

[CollectionDefinition(Name)]
public sealed class TorchSerial
{
    // Torch-heavy tests of Peft and Training run one at a time: 2 shared cores, and some tests use the global generator.
    public const string Name = "Forgetless.Peft+Training torch tests";
}
