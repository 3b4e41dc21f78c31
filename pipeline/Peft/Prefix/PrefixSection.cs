using Forgetless.Configuration;

namespace Forgetless.Peft;

/// <summary><c>finetune.prefix</c>: prefix tuning's virtual tokens (PEFT's PrefixTuningConfig).</summary>
public sealed class PrefixSection : IValidatableOptions
{
    public int VirtualTokens { get; set; } = 16;
    /// <summary>Reparameterise through an MLP (PEFT prefix_projection).</summary>
    public bool Projection { get; set; }
    public int EncoderHiddenSize { get; set; } = 128;

    public IEnumerable<string> Validate()
    {
        if (VirtualTokens <= 0) yield return $"virtualTokens = {VirtualTokens}: must be a positive whole number";
        if (Projection && EncoderHiddenSize <= 0) yield return $"encoderHiddenSize = {EncoderHiddenSize}: must be positive with prefix.projection";
    }
}
