using Forgetless.Configuration;
using Forgetless.Model;

namespace Forgetless.Peft;

/// <summary>
/// QLoRA (Dettmers et al. 2023): every linear layer of the base but the output head is stored as NF4
/// (<see cref="Nf4Linear"/>, as bitsandbytes' load_in_4bit) and LoRA trains on the targets on top of them. The adapter is a plain PEFT LORA folder, read by <see cref="LoraMethod"/> and applied to the f32 base,
/// as PEFT applies a QLoRA adapter to an unquantized model.
/// </summary>
public sealed class QloraMethod : LoraMethod
{
    public override string Name => "qlora";
    public override string Summary => "LoRA on an NF4-quantized base (every linear layer but lm_head; double quantization optional); PEFT's LORA format";
    public override IReadOnlyList<(string Name, Type Options)> Sections => [("lora", typeof(LoraSection)), ("qlora", typeof(QloraSection))];

    public override string MergeRefusal =>
        "the base it trained on is NF4; train with method lora to merge, or apply the adapter to the f32 base (package.exportMerged does)";

    protected override TunedModel Inject(CausalLM model, PluginSections sections, long seed)
    {
        var lora = sections.Get<LoraSection>("lora");
        var adapted = InjectTargets(lora, () => QLora.Apply(model, lora.Targets(), lora.Layer(seed), sections.Get<QloraSection>("qlora").DoubleQuant));
        Freezing.OnlyAdapters(model);
        return new TunedModel(model, this, Freezing.Trainable(model), adapted, sections);
    }

    public override IReadOnlyDictionary<string, object?> Facts(TunedModel tuned)
    {
        var (nf4, f32) = QLora.WeightBytes(tuned.Model);
        return new Dictionary<string, object?> { ["nf4_weight_bytes"] = nf4, ["nf4_weights_as_f32_bytes"] = f32 };
    }
}
