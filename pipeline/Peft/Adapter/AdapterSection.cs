using Forgetless.Configuration;

namespace Forgetless.Peft;

/// <summary><c>finetune.adapter</c>: the Houlsby bottleneck adapters.</summary>
public sealed class AdapterSection : IValidatableOptions
{
    public int Size { get; set; } = 16;
    public AdapterActivation Activation { get; set; } = AdapterActivation.Gelu;
    /// <summary>Outputs the bottleneck follows: o_proj (after attention) and down_proj (after the MLP).</summary>
    public List<string> TargetModules { get; set; } = ["o_proj", "down_proj"];

    public IEnumerable<string> Validate()
    {
        if (Size <= 0) yield return $"size = {Size}: must be a positive whole number";
        if (TargetModules.Count == 0) yield return "targetModules: is empty; expected e.g. [o_proj, down_proj]";
    }
}
