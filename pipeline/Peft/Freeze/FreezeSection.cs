using Forgetless.Configuration;

namespace Forgetless.Peft;

/// <summary><c>finetune.freeze</c>: how many bottom layers stay frozen.</summary>
public sealed class FreezeSection : IValidatableOptions
{
    /// <summary>Bottom layers frozen (embeddings are always frozen by this method).</summary>
    public int Layers { get; set; } = 2;

    public IEnumerable<string> Validate()
    {
        if (Layers < 0) yield return $"layers = {Layers}: must be 0 or more";
    }
}
