using System.Text.Json.Nodes;
using Forgetless.Configuration;
using Forgetless.Model;

namespace Forgetless.Peft;

/// <summary>
/// Bottleneck adapters (Houlsby et al. 2019) after the target projections' outputs (<see cref="BottleneckAdapter"/>).
/// PEFT has no bottleneck tuner, so the folder is Forgetless' own <c>FORGETLESS_BOTTLENECK</c>: PEFT-style tensor keys
/// (<c>base_model.model.PATH.adapter_down.weight</c>, …) and a config naming the size, activation and targets.
/// </summary>
public sealed class AdapterMethod : PeftMethod
{
    public const string BottleneckType = "FORGETLESS_BOTTLENECK";

    public override string Name => "adapter";
    public override string Summary => "Houlsby bottleneck adapters after the target projections (FORGETLESS_BOTTLENECK)";
    public override string PeftType => BottleneckType;
    public override IReadOnlyList<(string Name, Type Options)> Sections => [("adapter", typeof(AdapterSection))];
    public override string MergeRefusal => "a bottleneck adapter is a non-linear layer; no base weight can hold it";

    protected override TunedModel Inject(CausalLM model, PluginSections sections, long seed)
    {
        var adapter = sections.Get<AdapterSection>("adapter");
        var targets = ModuleTargets.Suffixes(adapter.TargetModules.ToArray());
        var adapted = AdapterInjector.AsConfigError("finetune.adapter.targetModules", targets, () => Bottleneck.Apply(model, targets,
            new BottleneckOptions { BottleneckSize = adapter.Size, Activation = adapter.Activation, Seed = seed }));
        Freezing.OnlyAdapters(model);
        return new TunedModel(model, this, Freezing.Trainable(model), adapted, sections);
    }

    public override void Save(TunedModel tuned, string folder, string? baseModel)
    {
        var adapter = tuned.Sections.Get<AdapterSection>("adapter");
        AdapterTensors.SaveWeights(folder, tuned.Model);
        AdapterFolder.WriteConfig(folder, new JsonObject
        {
            ["activation"] = adapter.Activation.ToString().ToLowerInvariant(),
            ["base_model_name_or_path"] = baseModel,
            ["bottleneck_size"] = adapter.Size,
            ["method"] = Name,
            ["peft_type"] = BottleneckType,
            ["target_modules"] = new JsonArray(adapter.TargetModules.Select(t => (JsonNode)t).ToArray()),
            ["task_type"] = "CAUSAL_LM",
        });
    }

    public override void Load(CausalLM model, AdapterFolder.Info folder)
    {
        var options = new BottleneckOptions
        {
            BottleneckSize = folder.Int("bottleneck_size"),
            Activation = Enum.Parse<AdapterActivation>(folder.Config["activation"]?.GetValue<string>() ?? "gelu", ignoreCase: true),
        };
        Bottleneck.Apply(model, AdapterFolder.Targets(folder), options);
        AdapterTensors.LoadWeights(folder.Folder, model);
    }
}
