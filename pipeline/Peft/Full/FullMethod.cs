using Forgetless.Configuration;
using Forgetless.Model;

namespace Forgetless.Peft;

/// <summary>Full fine-tuning: every weight trains; the folder holds the changed weights (<see cref="ChangedWeights"/>).</summary>
public class FullMethod : PeftMethod
{
    public override string Name => "full";
    public override string Summary => "every weight trains; writes the changed weights (FORGETLESS_WEIGHTS)";
    public override bool TrainsBaseProjections => true;
    public override string PeftType => ChangedWeights.PeftType;
    public override IReadOnlyList<(string Name, Type Options)> Sections => [];
    public override L2SpAnchor L2SpAnchor => L2SpAnchor.StartingValues;

    protected override TunedModel Inject(CausalLM model, PluginSections sections, long seed)
    {
        Freezing.Full(model);
        return new TunedModel(model, this, Freezing.Trainable(model), [], sections);
    }

    /// <summary>Continues only the weights of an earlier full or freeze run.</summary>
    protected override void Continue(TunedModel tuned, AdapterFolder.Info earlier)
    {
        RequireType(earlier, $"continues only the weights of an earlier full or freeze run ({PeftType})");
        ChangedWeights.Apply(tuned.Model, earlier);
    }

    public override void Save(TunedModel tuned, string folder, string? baseModel) =>
        ChangedWeights.Save(tuned, folder, baseModel, frozenLayers: 0);

    public override void Load(CausalLM model, AdapterFolder.Info folder) => ChangedWeights.Apply(model, folder);

    /// <summary>The weights are already plain base weights.</summary>
    public override void Merge(CausalLM adapted) { }
}
