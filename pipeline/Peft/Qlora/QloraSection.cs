namespace Forgetless.Peft;

/// <summary><c>finetune.qlora</c>: the quantization of qlora's base projections (the adapter itself is <c>finetune.lora</c>).</summary>
public sealed class QloraSection
{
    /// <summary>Quantize the NF4 block constants too (QLoRA's double quantization).</summary>
    public bool DoubleQuant { get; set; } = true;

    /// <summary>
    /// bitsandbytes' <c>bnb_4bit_compute_dtype</c>: the type the dequantized weights multiply in. <c>auto</c> follows
    /// <c>run.precision</c> (f32 on the CPU); bf16 or fp16 on the CPU runs libtorch's slow half-precision kernels.
    /// </summary>
    public QloraComputeType ComputeDtype { get; set; } = QloraComputeType.Auto;
}

/// <summary>The choices of <c>finetune.qlora.computeDtype</c>.</summary>
public enum QloraComputeType { Auto, Fp32, Bf16, Fp16 }
