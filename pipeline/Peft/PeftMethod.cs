using Forgetless.Configuration;
using Forgetless.Model;
using Forgetless.Model.Devices;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Peft;

/// <summary>
/// One fine-tuning method as a plug-in, the way HF PEFT registers a tuner (config + layer + model) and Polly v8 keeps
/// a strategy in its own folder (options + strategy + builder extension). A method owns everything about itself:
/// its config sections under <c>finetune</c>, how it goes into a model and what then trains, how its adapter folder
/// is written, read, continued, exported and merged, and its L2-SP anchor. <see cref="PeftMethods"/> lists them;
/// nothing outside a method's folder switches on a method name or a <c>peft_type</c>.
/// </summary>
public abstract class PeftMethod
{
    /// <summary>The value of <c>finetune.method</c>, e.g. <c>lora</c>.</summary>
    public abstract string Name { get; }

    /// <summary>One line for the docs' methods table and error messages.</summary>
    public abstract string Summary { get; }

    /// <summary>The <c>peft_type</c> its adapter folders carry (several methods may write one type: qlora writes LORA).</summary>
    public abstract string PeftType { get; }

    /// <summary>
    /// The config sections under <c>finetune</c> this method reads, with their options types (its own first).
    /// qlora reads <c>lora</c> (the adapter) and <c>qlora</c> (the quantization), as PEFT pairs a LoraConfig with a
    /// BitsAndBytesConfig. Only these sections enter the finetune stage's fingerprint when the method is chosen.
    /// </summary>
    public abstract IReadOnlyList<(string Name, Type Options)> Sections { get; }

    /// <summary>
    /// What "no change" means for L2-SP: base weights that train are pulled toward their starting (pretrained)
    /// values; adapter tensors toward zero, the adapter that changes nothing.
    /// </summary>
    public virtual L2SpAnchor L2SpAnchor => L2SpAnchor.Zero;

    /// <summary>Null when the trained adapter can be folded into the base weights; otherwise why not.</summary>
    public virtual string? MergeRefusal => null;

    /// <summary>Benchmark cases of this method (<c>forgetless bench finetune</c>), each a settings override list.</summary>
    public virtual IReadOnlyList<BenchmarkSetting> BenchmarkCases => [new(Name, [])];

    /// <summary>Puts the method into a freshly loaded base model and marks what trains (seeded, deterministic).</summary>
    protected abstract TunedModel Inject(CausalLM model, PluginSections sections, long seed);

    /// <summary>Errors in this method's sections, each as <c>section.key = value: what is allowed</c>.</summary>
    public virtual IEnumerable<string> Validate(PluginSections sections) =>
        Sections.SelectMany(s => sections[s.Name] is IValidatableOptions v ? v.Validate().Select(e => s.Name + "." + e) : []);

    /// <summary>
    /// The method applied to <paramref name="model"/>, continuing from an earlier adapter folder when one is given
    /// (sequential tasks, distillation). Mistakes a user can make become <see cref="ConfigException"/>s naming the key.
    /// </summary>
    /// <param name="placement">Where the model runs: the adapters the method adds are moved there (f32), and whatever
    /// trains becomes f32 beside frozen weights in the compute type. The CPU in f32 when null.</param>
    public TunedModel Apply(CausalLM model, PluginSections sections, long seed, string? initAdapter = null, Placement? placement = null)
    {
        var tuned = Inject(model, sections, seed);
        if (tuned.Trainable.Count == 0)
        {
            tuned.Dispose();
            throw new ConfigException($"finetune.method = {Name}: nothing is left to train (check the {Name} section); regularizers such as l2sp need trainable parameters too");
        }
        tuned = tuned.PlacedOn(placement ?? Placement.Cpu);
        if (initAdapter is not null) Continue(tuned, AdapterFolder.Describe(initAdapter));
        return tuned;
    }

    /// <summary>
    /// Continues from an earlier adapter: its tensors replace the fresh ones. The default takes a folder of this
    /// method's <see cref="PeftType"/> whose tensors fit the injected adapter layers.
    /// </summary>
    protected virtual void Continue(TunedModel tuned, AdapterFolder.Info earlier)
    {
        RequireType(earlier, $"trains {PeftType}; start from an adapter of the same method");
        try
        {
            AdapterTensors.LoadWeights(earlier.Folder, tuned.Model);
        }
        catch (InvalidOperationException e)
        {
            throw new ConfigException($"finetune.initAdapter = {earlier.Folder}: does not fit the configured adapter ({e.Message})");
        }
    }

    /// <summary>Throws a <see cref="ConfigException"/> unless the earlier folder holds this method's <see cref="PeftType"/>.</summary>
    protected void RequireType(AdapterFolder.Info earlier, string why)
    {
        if (earlier.PeftType != PeftType)
            throw new ConfigException($"finetune.initAdapter = {earlier.Folder}: holds a {earlier.PeftType} adapter, but finetune.method = {Name} {why}");
    }

    /// <summary>Writes the trained adapter folder (<c>adapter_config.json</c> + tensors); same tensors and options give the same bytes.</summary>
    public abstract void Save(TunedModel tuned, string folder, string? baseModel);

    /// <summary>Applies a saved folder of this method's <see cref="PeftType"/> to a fresh base model (score, evaluate, package).</summary>
    public abstract void Load(CausalLM model, AdapterFolder.Info folder);

    /// <summary>
    /// Writes the folder into a package as its consumers expect it; <paramref name="adapted"/> is the base model
    /// with the folder already applied (so a package is never written for an adapter that does not fit). The
    /// default copies the weights byte for byte and rewrites the config with sorted keys and the portable base name.
    /// </summary>
    public virtual void Export(AdapterFolder.Info folder, CausalLM adapted, string baseModelName, string target)
    {
        File.Copy(Path.Combine(folder.Folder, AdapterTensors.WeightsFile), Path.Combine(target, AdapterTensors.WeightsFile), overwrite: true);
        var config = (System.Text.Json.Nodes.JsonObject)folder.Config.DeepClone();
        config["base_model_name_or_path"] = baseModelName;
        AdapterFolder.WriteConfig(target, config);
    }

    /// <summary>Folds the adapter into the base weights of <paramref name="adapted"/> in place (see <see cref="MergeRefusal"/>).</summary>
    public virtual void Merge(CausalLM adapted) =>
        throw new UserInputException($"a {Name} adapter cannot be merged into the base weights: {MergeRefusal}");

    /// <summary>
    /// The method's parameter counts for <paramref name="config"/> (the memory estimate), found by injecting it into a
    /// skeleton of the model on the meta device: nothing is allocated or loaded.
    /// </summary>
    public virtual FineTuning.MethodFootprint Footprint(ModelConfig config, PluginSections sections)
    {
        using var tuned = Inject(ModelFactory.CreateUninitialized(config, TorchSharp.torch.META), sections, seed: 0);
        return new FineTuning.MethodFootprint(tuned.TotalParameters, tuned.TrainableParameters, 0, 0);
    }

    /// <summary>True when the base model's projections themselves train (full, freeze): their inputs are kept for backward.</summary>
    public virtual bool TrainsBaseProjections => false;

    /// <summary>
    /// Modules this method stores differently from the checkpoint, built while the base model loads (qlora: NF4) so
    /// that their dense weights never exist in memory; null for methods that train on the base as it is stored.
    /// </summary>
    public virtual IModuleLoader? BaseLoader(PluginSections sections) => null;

    /// <summary>Numbers about the applied method for summary.json (e.g. qlora's NF4 bytes), keys in snake_case.</summary>
    public virtual IReadOnlyDictionary<string, object?> Facts(TunedModel tuned) => new Dictionary<string, object?>();
}

/// <summary>Where L2-SP pulls a method's trainable tensors (see <see cref="PeftMethod.L2SpAnchor"/>).</summary>
public enum L2SpAnchor { Zero, StartingValues }

/// <summary>One benchmark case: a name and the <c>--set</c>-style overrides it runs with.</summary>
public sealed record BenchmarkSetting(string Name, IReadOnlyList<string> Overrides);

/// <summary>A base model with a fine-tuning method applied: the model, the method and what trains.</summary>
public sealed class TunedModel(CausalLM model, PeftMethod method, IReadOnlyList<(string name, Parameter parameter)> trainable,
    IReadOnlyList<string> adaptedModules, PluginSections sections) : IDisposable
{
    public CausalLM Model { get; } = model;
    public PeftMethod Method { get; } = method;

    /// <summary>The method's bound sections (what <see cref="PeftMethod.Save"/> writes into the config).</summary>
    public PluginSections Sections { get; } = sections;

    /// <summary>The tensors the optimizer updates, with stable names (model paths; <c>prefix.*</c> for prefix tuning).</summary>
    public IReadOnlyList<(string name, Parameter parameter)> Trainable { get; } = trainable;

    /// <summary>Module paths the method wrapped (empty for full, freeze and prefix).</summary>
    public IReadOnlyList<string> AdaptedModules { get; } = adaptedModules;

    public long TrainableParameters => Trainable.Sum(p => p.parameter.numel());

    /// <summary>
    /// This model on <paramref name="placement"/> (see <see cref="Placement.Place"/>), its trainable tensors looked up
    /// again by the module that owns them (moving or converting a module replaces its Parameter objects).
    /// </summary>
    public TunedModel PlacedOn(Placement placement)
    {
        var prefix = Model.PrefixKeyValues as nn.Module;
        if (placement.IsPlainCpu)
        {
            placement.Place(Model, prefix);
            return this;
        }
        var roots = prefix is null ? new[] { (nn.Module)Model } : [Model, prefix];
        var owners = Trainable.Select(t =>
        {
            foreach (var root in roots)
                foreach (var (_, module) in root.named_modules().Prepend(("", root)))
                    foreach (var (attr, p) in module.named_parameters(recurse: false))
                        if (ReferenceEquals(p, t.parameter)) return (t.name, module, attr);
            throw new InvalidOperationException($"trainable tensor '{t.name}' belongs to no module of the model");
        }).ToList();
        placement.Place(Model, prefix);
        var rebound = owners.Select(o => (o.name, o.module.named_parameters(recurse: false).Single(p => p.name == o.attr).parameter)).ToList();
        return new TunedModel(Model, Method, rebound, AdaptedModules, Sections);
    }

    /// <summary>Every parameter of the model and of a prefix encoder attached to it.</summary>
    public long TotalParameters => Model.parameters().Sum(p => p.numel()) + ((Model.PrefixKeyValues as nn.Module)?.parameters().Sum(p => p.numel()) ?? 0);

    public void Dispose()
    {
        (Model.PrefixKeyValues as IDisposable)?.Dispose();
        Model.Dispose();
    }
}
