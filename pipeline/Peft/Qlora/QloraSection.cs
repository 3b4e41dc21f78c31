namespace Forgetless.Peft;

/// <summary><c>finetune.qlora</c>: the quantization of qlora's base projections (the adapter itself is <c>finetune.lora</c>).</summary>
public sealed class QloraSection
{
    /// <summary>Quantize the NF4 block constants too (QLoRA's double quantization).</summary>
    public bool DoubleQuant { get; set; } = true;
}
