using Forgetless.Configuration;

namespace Forgetless.Peft;

/// <summary>
/// <c>finetune.ia3</c> (PEFT's IA3Config). The defaults are PEFT's for Llama-family models: k, v and the MLP's down
/// projection, which is the feed-forward module (its input is scaled).
/// </summary>
public sealed class Ia3Section : IValidatableOptions
{
    public List<string> TargetModules { get; set; } = ["k_proj", "v_proj", "down_proj"];
    /// <summary>Targets treated as feed-forward: (IA)³ scales their input instead of their output. A subset of the targets.</summary>
    public List<string> FeedforwardModules { get; set; } = ["down_proj"];

    public ModuleTargets Targets() => ModuleTargets.Suffixes(TargetModules.ToArray());
    public ModuleTargets Feedforward() => ModuleTargets.Suffixes(FeedforwardModules.ToArray());

    public IEnumerable<string> Validate()
    {
        if (TargetModules.Count == 0) yield return "targetModules: is empty; expected e.g. [k_proj, v_proj, down_proj]";
        var outside = FeedforwardModules.Where(f => !TargetModules.Contains(f)).ToList();
        if (outside.Count > 0)
            yield return $"feedforwardModules = [{string.Join(", ", FeedforwardModules)}]: must be a subset of targetModules ({string.Join(", ", outside)} is not a target), as PEFT requires";
    }
}
