using Forgetless.Configuration;
using Forgetless.Model;
using Forgetless.Model.Devices;
using TorchSharp;

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
        var qlora = sections.Get<QloraSection>("qlora");
        var adapted = InjectTargets(lora, () => QLora.Apply(model, lora.Targets(), lora.Layer(seed), qlora.DoubleQuant));
        foreach (var (_, module) in model.named_modules())
            if (module is Nf4Linear nf4) nf4.ComputeType = ComputeTypeOf(qlora);
        Freezing.OnlyAdapters(model);
        return new TunedModel(model, this, Freezing.Trainable(model), adapted, sections);
    }

    /// <summary>lora's adapter on a base whose projections are NF4: counted on a meta skeleton, without quantizing anything.</summary>
    public override FineTuning.MethodFootprint Footprint(ModelConfig config, PluginSections sections)
    {
        using var skeleton = ModelFactory.CreateUninitialized(config, TorchSharp.torch.META);
        var quantized = skeleton.named_modules().Where(m => QLora.IsBaseProjection(m.name, m.module)).ToList();
        long quantizedParameters = quantized.Sum(m => ((TorchSharp.Modules.Linear)m.module).weight.numel());
        var lora = new LoraMethod().Footprint(config, sections);
        return lora with { Quantized = quantizedParameters, QuantizedModules = quantized.Count };
    }

    /// <summary>The base's projections go straight from the checkpoint into NF4, one at a time: no dense copy of them exists.</summary>
    public override IModuleLoader BaseLoader(PluginSections sections) => new Nf4Loader(sections.Get<QloraSection>("qlora"));

    private sealed class Nf4Loader(QloraSection section) : IModuleLoader
    {
        public bool Claims(string path, TorchSharp.torch.nn.Module module) => QLora.IsBaseProjection(path, module);

        /// <summary>
        /// The embedding tables and the output head — what bitsandbytes leaves unquantized — stay in the checkpoint's
        /// 16-bit type (as transformers loads them with torch_dtype = bfloat16, and TRL keeps them for QLoRA): they are
        /// frozen, rows are widened exactly when looked up, and the head is widened a slice at a time where it projects.
        /// For Qwen2.5-0.5B's tied 151,936 × 896 table that is 0.27 GB instead of 0.54 GB on the CPU.
        /// </summary>
        public TorchSharp.torch.ScalarType? ParameterType(string name, TorchSharp.torch.nn.Module owner, TorchSharp.torch.ScalarType stored) =>
            stored is TorchSharp.torch.ScalarType.BFloat16 or TorchSharp.torch.ScalarType.Float16
            && (owner is TokenEmbedding || name == "lm_head.weight") ? stored : null;

        public TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor> Build(string path, TorchSharp.torch.Tensor weight,
            TorchSharp.torch.Tensor? bias, Placement placement)
        {
            using var b = bias?.to(placement.ComputeType);
            var layer = new Nf4Linear(Nf4.Quantize(weight, section.DoubleQuant), b) { ComputeType = ComputeTypeOf(section) };
            layer.to(placement.Device);
            return layer;
        }
    }

    /// <summary>The multiply type: bnb_4bit_compute_dtype, or the run's compute type for auto.</summary>
    public static TorchSharp.torch.ScalarType? ComputeTypeOf(QloraSection section) => section.ComputeDtype switch
    {
        QloraComputeType.Fp32 => TorchSharp.torch.ScalarType.Float32,
        QloraComputeType.Bf16 => TorchSharp.torch.ScalarType.BFloat16,
        QloraComputeType.Fp16 => TorchSharp.torch.ScalarType.Float16,
        _ => null,
    };

    public override IReadOnlyDictionary<string, object?> Facts(TunedModel tuned)
    {
        var (nf4, f32) = QLora.WeightBytes(tuned.Model);
        return new Dictionary<string, object?> { ["nf4_weight_bytes"] = nf4, ["nf4_weights_as_f32_bytes"] = f32 };
    }
}
