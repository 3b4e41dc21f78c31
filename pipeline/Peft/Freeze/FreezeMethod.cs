using Forgetless.Configuration;
using Forgetless.Model;

namespace Forgetless.Peft;

/// <summary>
/// Layer freezing: the embeddings and the bottom <c>freeze.layers</c> layers stay as they are, the rest trains. Writes
/// the changed weights like <see cref="FullMethod"/> (which reads them back).
/// </summary>
public sealed class FreezeMethod : FullMethod
{
    public override string Name => "freeze";
    public override string Summary => "embeddings and the bottom freeze.layers layers frozen, the rest trains; FORGETLESS_WEIGHTS";
    public override IReadOnlyList<(string Name, Type Options)> Sections => [("freeze", typeof(FreezeSection))];

    protected override TunedModel Inject(CausalLM model, PluginSections sections, long seed)
    {
        int layers = sections.Get<FreezeSection>("freeze").Layers;
        if (layers > model.Config.NumHiddenLayers)
            throw new ConfigException($"finetune.freeze.layers = {layers}: the model has only {model.Config.NumHiddenLayers} layers");
        Freezing.FreezeBottom(model, layers);
        return new TunedModel(model, this, Freezing.Trainable(model), [], sections);
    }

    public override void Save(TunedModel tuned, string folder, string? baseModel) =>
        ChangedWeights.Save(tuned, folder, baseModel, tuned.Sections.Get<FreezeSection>("freeze").Layers);
}
