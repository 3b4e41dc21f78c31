using Forgetless.Model.Devices;
using Forgetless.Model.Safetensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Model;

/// <summary>
/// A decoder-only language model whose module tree mirrors the HF checkpoint keys, so that
/// <c>named_parameters()</c> names are the safetensors keys (e.g. <c>model.layers.0.self_attn.q_proj.weight</c>).
/// </summary>
/// <remarks>
/// Contract for adapter code (LoRA and friends): every projection is a TorchSharp <c>Linear</c> held in a
/// field typed <c>nn.Module&lt;Tensor, Tensor&gt;</c> named like its HF key, and forward passes read that
/// field on every call. Replacing the field by reflection and re-registering it changes the computation;
/// TorchSharp refuses to register a name twice, so call <c>register_module(name, null!)</c> (which removes
/// the entry) before <c>register_module(name, replacement)</c> (see AdapterContractTests). Linear layers that HF stores as GPT-2 <c>Conv1D</c> ([in, out])
/// are listed in <see cref="FanInFanOutModules"/>; at runtime they are ordinary [out, in] Linear layers.
/// Padding: <see cref="Forward"/> accepts right padding (scoring) and left padding (batched generation);
/// positions count only real tokens, so either way a row computes what it would compute alone.
/// </remarks>
public abstract class CausalLM : nn.Module
{
    protected CausalLM(string name, ModelConfig config) : base(name) => Config = config;

    public ModelConfig Config { get; }

    /// <summary>
    /// The type activations flow in (<see cref="Devices.MixedPrecision"/>): f32, or bf16/f16 on a GPU. Logits are f32 whatever it is.
    /// </summary>
    public ScalarType ComputeType { get; set; } = ScalarType.Float32;

    /// <summary>Recompute each decoder layer in backward instead of keeping its activations (<see cref="LayerCheckpoint"/>); training only.</summary>
    public bool GradientCheckpointing { get; set; }

    /// <summary>Where the model's weights live (the device of its first parameter); inputs must be put there.</summary>
    public Device Device => parameters().First().device;

    /// <summary>Optional per-layer key/value prefixes (prefix tuning). Null: plain model.</summary>
    public IPrefixKeyValues? PrefixKeyValues { get; set; }

    /// <summary>Module paths (e.g. <c>transformer.h.0.attn.c_attn</c>) whose checkpoint weight is stored [in, out].</summary>
    public virtual IReadOnlySet<string> FanInFanOutModules { get; } = new HashSet<string>();

    /// <summary>HF's base_model_prefix: checkpoints of the bare base model omit it from their keys.</summary>
    public abstract string BaseModelPrefix { get; }

    /// <summary>
    /// Logits [B, T, V] float32 for <paramref name="inputIds"/> [B, T] int64. <paramref name="attentionMask"/>
    /// [B, T] is 1 for tokens and 0 for padding (null: all tokens — or right padding, which no real token can see
    /// under causal attention, so a right-padded batch is best passed without a mask). With a <paramref name="cache"/>,
    /// the ids are the tokens after those already cached, the mask covers only them, and the cache is extended.
    /// A <paramref name="layout"/> (packed documents, shared-context branches) says itself where each token sits and
    /// what it sees; it takes no mask and no cache. With <paramref name="logitsAt"/> ([N] int64 indices into the
    /// flattened B·T tokens), only those tokens go through the output projection and the result is [N, V]: scoring
    /// needs the logits of a few positions, and the vocabulary projection is a large part of a small model's forward.
    /// </summary>
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, KvCache? cache = null, TokenLayout? layout = null, Tensor? logitsAt = null)
    {
        if (inputIds.dim() != 2 || inputIds.dtype != ScalarType.Int64)
            throw new ArgumentException($"inputIds must be [batch, tokens] int64, got {inputIds.dtype} [{string.Join(", ", inputIds.shape)}]");
        if (attentionMask is not null && !attentionMask.shape.SequenceEqual(inputIds.shape))
            throw new ArgumentException($"attentionMask shape [{string.Join(", ", attentionMask.shape)}] differs from inputIds [{string.Join(", ", inputIds.shape)}]");
        using var scope = NewDisposeScope();
        var (hidden, context) = RunLayers(scope, inputIds, attentionMask, cache, layout);
        if (logitsAt is not null) hidden = DeviceOps.Rows(hidden.reshape(-1, hidden.shape[^1]), logitsAt);
        var logits = OutputLogits(hidden);
        if (logits.dtype != ScalarType.Float32) logits = logits.to(ScalarType.Float32);
        if (cache is not null) cache.Advance(context.FullMask!);
        return logits.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The final hidden states [B, T, D] (after the last norm, in <see cref="ComputeType"/>) that <see cref="Forward"/>
    /// projects to logits — for a loss that projects them itself, a few positions at a time (<see cref="PlainOutputWeight"/>).
    /// </summary>
    public Tensor ForwardHidden(Tensor inputIds, TokenLayout? layout = null)
    {
        using var scope = NewDisposeScope();
        return RunLayers(scope, inputIds, null, null, layout).Hidden.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The output projection as a bare matrix [V, D] when that is all it is — a tied input embedding, or an lm_head
    /// without bias or adapter — so that logits = hidden · Wᵀ; null when the head is anything else.
    /// </summary>
    public Tensor? PlainOutputWeight => OutputHead switch
    {
        null => InputEmbedding.weight,
        Linear { bias: null } linear => linear.weight,
        _ => null,
    };

    /// <summary>Logits [..., V] f32 of hidden states from <see cref="ForwardHidden"/>.</summary>
    public Tensor LogitsOf(Tensor hidden)
    {
        var logits = OutputLogits(hidden);
        if (logits.dtype == ScalarType.Float32) return logits;
        using (logits) return logits.to(ScalarType.Float32);
    }

    private (Tensor Hidden, AttentionContext Context) RunLayers(DisposeScope scope, Tensor inputIds, Tensor? attentionMask, KvCache? cache, TokenLayout? layout)
    {
        var checkpoint = GradientCheckpointing && training && cache is null && torch.is_grad_enabled() ? new LayerCheckpoint() : null;
        int before = scope.DisposablesCount;
        var context = AttentionContext.Create(inputIds, attentionMask, cache, PrefixKeyValues, layout);
        checkpoint?.Keep(scope, before);
        CheckSequenceLength((PrefixKeyValues?.Length ?? 0) + (int)(layout?.PositionCount ?? (cache?.Length ?? 0) + inputIds.shape[1]));
        return (HiddenStates(inputIds, context, checkpoint), context);
    }

    public KvCache NewCache() => new(Config.NumHiddenLayers);

    /// <summary>
    /// The model's context in real tokens: what lm-eval calls max_length (the config's maximum positions), less a
    /// prefix's virtual tokens where positions are learned and run out (GPT-2).
    /// </summary>
    public virtual int ContextLength => Config.MaxPositionEmbeddings;

    /// <summary>Throws when a sequence (a prefix's virtual tokens included) is longer than the architecture can attend over correctly.</summary>
    protected virtual void CheckSequenceLength(int totalLength)
    {
    }

    /// <summary>The final hidden states [B, T, D], after the last norm, in <see cref="ComputeType"/>.</summary>
    /// <param name="checkpoint">Non-null when each decoder layer is to be recomputed in backward (see <see cref="LayerCheckpoint"/>).</param>
    private protected abstract Tensor HiddenStates(Tensor inputIds, AttentionContext context, LayerCheckpoint? checkpoint);

    /// <summary>The token embedding table [V, D] (the output projection too when the embeddings are tied).</summary>
    private protected abstract TokenEmbedding InputEmbedding { get; }

    /// <summary>
    /// The output projection module (lm_head, or an adapter that replaced it); null when the embeddings are tied: there is
    /// then no lm_head module (a second Parameter for the same storage would be updated twice by an optimizer).
    /// </summary>
    private protected abstract nn.Module<Tensor, Tensor>? OutputHead { get; }

    /// <summary>The vocabulary projection of hidden states [..., D] to logits [..., V].</summary>
    private Tensor OutputLogits(Tensor hidden) =>
        OutputHead is { } head ? MixedPrecision.Project(head, hidden) : MixedPrecision.Linear(hidden, InputEmbedding.weight);

    /// <summary>Checkpoint keys that HF writes but that hold no weights we need (e.g. causal-mask buffers).</summary>
    protected virtual bool IsIgnorableCheckpointKey(string key) =>
        key.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal)
        || (Config.TieWordEmbeddings && key == "lm_head.weight");

    /// <summary>Weights in HF checkpoint layout (Conv1D weights transposed back to [in, out]).</summary>
    public IEnumerable<KeyValuePair<string, Tensor>> CheckpointTensors()
    {
        foreach (var (name, p) in named_parameters())
            yield return new(name, IsFanInFanOutWeight(name) ? p.detach().t() : p.detach());
    }

    private bool IsFanInFanOutWeight(string name) =>
        name.EndsWith(".weight", StringComparison.Ordinal) && FanInFanOutModules.Contains(name[..^".weight".Length]);

    /// <summary>
    /// The checkpoint's key for parameter <paramref name="name"/>: the name itself, or the name without
    /// <see cref="BaseModelPrefix"/> (checkpoints of the bare base model); null when the checkpoint has neither.
    /// </summary>
    internal string? CheckpointKeyOf(string name, CheckpointWeights weights) =>
        weights.Contains(name) ? name
        : name.StartsWith(BaseModelPrefix + ".", StringComparison.Ordinal) && weights.Contains(name[(BaseModelPrefix.Length + 1)..])
            ? name[(BaseModelPrefix.Length + 1)..]
            : null;

    /// <summary>
    /// Fills a skeleton built on the meta device (<see cref="ModelFactory.CreateUninitialized"/>) from
    /// <paramref name="weights"/>, checking every name and shape first: each parameter is read from the (memory-mapped)
    /// checkpoint straight into its own tensor in the placement's type on its device, one tensor at a time, so the model
    /// never exists twice and a bf16 checkpoint bound for a bf16 GPU run is never widened. Modules that
    /// <paramref name="loader"/> claims are built by it from their tensors instead (qlora's NF4 store).
    /// </summary>
    internal void LoadFrom(CheckpointWeights weights, Placement placement, IModuleLoader? loader = null)
    {
        using var _ = no_grad();
        var used = new HashSet<string>(StringComparer.Ordinal);
        var plan = new List<(string Name, string Key, bool Transpose)>();
        foreach (var (name, p) in named_parameters())
        {
            var key = CheckpointKeyOf(name, weights)
                ?? throw new InvalidDataException($"{weights.Description}: missing required tensor '{name}' for model_type '{Config.ModelType}'");
            var transpose = IsFanInFanOutWeight(name);
            var expected = transpose ? p.shape.Reverse().ToArray() : p.shape;
            var entry = weights.Entry(key);
            if (!entry.Shape.SequenceEqual(expected))
                throw new InvalidDataException(
                    $"{weights.FileOf(key)}: tensor '{key}' has shape {entry.ShapeText}, expected [{string.Join(", ", expected)}]"
                    + (transpose ? " (Conv1D layout [in, out])" : ""));
            plan.Add((name, key, transpose));
            used.Add(key);
        }
        var unexpected = weights.Keys.Where(k => !used.Contains(k) && !IsIgnorableCheckpointKey(k)).Order(StringComparer.Ordinal).ToList();
        if (unexpected.Count > 0)
            throw new InvalidDataException(
                $"{weights.Description}: {unexpected.Count} tensor(s) not used by model_type '{Config.ModelType}': "
                + string.Join(", ", unexpected.Take(5).Select(k => $"'{k}'")) + (unexpected.Count > 5 ? ", ..." : "")
                + " (wrong model_type in config.json, or a checkpoint with extra heads?)");

        var keyOf = plan.ToDictionary(p => p.Name, p => (p.Key, p.Transpose), StringComparer.Ordinal);
        Tensor Read(string name, ScalarType? type, Device? device)
        {
            var (key, transpose) = keyOf[name];
            var t = weights.Read(key, type, device);
            if (!transpose) return t;
            var c = t.t().contiguous();
            t.Dispose();
            return c;
        }

        var modules = named_modules().ToList();
        var byPath = modules.ToDictionary(m => m.name, m => m.module, StringComparer.Ordinal);
        var built = new HashSet<string>(StringComparer.Ordinal);
        if (loader is not null)
        {
            foreach (var (path, module) in modules.Where(m => m.name.Length > 0 && loader.Claims(m.name, m.module)).ToList())
            {
                using var weight = Read(path + ".weight", ScalarType.Float32, CPU);
                using var bias = keyOf.ContainsKey(path + ".bias") ? Read(path + ".bias", ScalarType.Float32, CPU) : null;
                var dot = path.LastIndexOf('.');
                var parent = dot < 0 ? this : byPath[path[..dot]];
                Peft.AdapterInjector.Replace(parent, path[(dot + 1)..], loader.Build(path, weight, bias, placement), path);
                module.Dispose();
                built.Add(path + ".weight");
                built.Add(path + ".bias");
            }
        }
        foreach (var (path, module) in named_modules().Prepend(("", this)).ToList())
        {
            foreach (var (attr, p) in module.named_parameters(recurse: false).ToList())
            {
                var name = path.Length == 0 ? attr : path + "." + attr;
                if (built.Contains(name)) continue;
                var value = Read(name, loader?.ParameterType(name, module, weights.StoredType(keyOf[name].Key)) ?? placement.LoadType(ScalarType.Float32), placement.Device);
                SetParameter(module, attr, new Parameter(value, requires_grad: p.requires_grad), name);
            }
        }
        ComputeType = placement.ComputeType;
    }

    /// <summary>Puts a new Parameter in a module's slot through its settable property named like it (as TorchSharp's own modules have).</summary>
    private static void SetParameter(nn.Module module, string attr, Parameter value, string name)
    {
        var property = module.GetType().GetProperty(attr, System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance);
        if (property is null || !property.CanWrite || !property.PropertyType.IsAssignableFrom(typeof(Parameter)))
            throw new InvalidOperationException(
                $"parameter '{name}': {module.GetType().Name} has no settable property '{attr}'; model code must expose each parameter like TorchSharp's modules do");
        property.SetValue(module, value);
    }

    /// <summary>
    /// HF-style fresh weights, deterministic for a seed: linear and embedding weights ~ N(0, initializer_range),
    /// biases 0, norm weights 1. Parameters are visited in registration order with one seeded generator.
    /// </summary>
    public void InitializeWeights(long seed)
    {
        using var _ = no_grad();
        using var generator = new Generator((ulong)seed);
        foreach (var (name, p) in named_parameters())
        {
            if (IsNormParameter(name)) { if (name.EndsWith(".bias", StringComparison.Ordinal)) p.zero_(); else p.fill_(Scalars.One); }
            else if (name.EndsWith(".bias", StringComparison.Ordinal)) p.zero_();
            else p.normal_(0, InitStd(name), generator);
        }
    }

    protected abstract bool IsNormParameter(string name);

    protected virtual double InitStd(string parameterName) => Config.InitializerRange;
}
