using System.Text.Json.Nodes;
using Forgetless.Configuration;
using Forgetless.Model;

namespace Forgetless.Peft;

/// <summary>
/// (IA)³: learned scaling vectors on the target projections (<see cref="Ia3Linear"/>), about 0.01% of a model's
/// weights. Writes PEFT's IA3 folder — <c>peft_type: IA3</c>, <c>target_modules</c>, <c>feedforward_modules</c>,
/// tensors <c>base_model.model.PATH.ia3_l</c> — which <c>PeftModel.from_pretrained</c> loads; merges by scaling W.
/// </summary>
public sealed class Ia3Method : PeftMethod
{
    public const string Type = "IA3";

    public override string Name => "ia3";
    public override string Summary => "(IA)³ scaling vectors on k, v (outputs) and the MLP down projection (input); PEFT's IA3 format";
    public override string PeftType => Type;
    public override IReadOnlyList<(string Name, System.Type Options)> Sections => [("ia3", typeof(Ia3Section))];

    protected override TunedModel Inject(CausalLM model, PluginSections sections, long seed)
    {
        var ia3 = sections.Get<Ia3Section>("ia3");
        var adapted = AdapterInjector.AsConfigError("finetune.ia3.targetModules", ia3.Targets(), () => Ia3.Apply(model, ia3.Targets(), ia3.Feedforward()));
        Freezing.OnlyAdapters(model);
        return new TunedModel(model, this, Freezing.Trainable(model), adapted, sections);
    }

    public override void Save(TunedModel tuned, string folder, string? baseModel)
    {
        var ia3 = tuned.Sections.Get<Ia3Section>("ia3");
        AdapterTensors.SaveWeights(folder, tuned.Model);
        AdapterFolder.WriteConfig(folder, Config(ia3.Targets(), ia3.Feedforward(), baseModel,
            fanInFanOut: tuned.AdaptedModules.Any(tuned.Model.FanInFanOutModules.Contains)));
    }

    public override void Load(CausalLM model, AdapterFolder.Info folder)
    {
        var feedforward = folder.Config["feedforward_modules"] is null ? ModuleTargets.Suffixes() : AdapterFolder.Targets(folder, "feedforward_modules");
        Ia3.Apply(model, AdapterFolder.Targets(folder), feedforward);
        AdapterTensors.LoadWeights(folder.Folder, model);
    }

    /// <summary>Fan-in-fan-out is recomputed for the package from the model it is applied to, as for LoRA.</summary>
    public override void Export(AdapterFolder.Info folder, CausalLM adapted, string baseModelName, string target)
    {
        base.Export(folder, adapted, baseModelName, target);
        var config = AdapterFolder.Describe(target).Config;
        config["fan_in_fan_out"] = AdapterLayers.Find(adapted).Any(l => adapted.FanInFanOutModules.Contains(l.path));
        AdapterFolder.WriteConfig(target, config);
    }

    public override void Merge(CausalLM adapted) => Ia3.MergeAll(adapted);

    /// <summary>IA3Config as PEFT's save_pretrained writes it (sets written as sorted lists).</summary>
    public static JsonObject Config(ModuleTargets targets, ModuleTargets feedforward, string? baseModel, bool fanInFanOut) => new()
    {
        ["auto_mapping"] = null,
        ["base_model_name_or_path"] = baseModel,
        ["exclude_modules"] = null,
        ["fan_in_fan_out"] = fanInFanOut,
        ["feedforward_modules"] = AdapterFolder.TargetsJson(feedforward),
        ["inference_mode"] = true,
        ["init_ia3_weights"] = true,
        ["modules_to_save"] = null,
        ["peft_type"] = Type,
        ["revision"] = null,
        ["target_modules"] = AdapterFolder.TargetsJson(targets),
        ["task_type"] = "CAUSAL_LM",
    };
}
