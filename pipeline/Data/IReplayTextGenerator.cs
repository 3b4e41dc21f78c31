namespace Forgetless.Data;

/// <summary>
/// Writes replay text with the base model before it is fine-tuned (Self-Synthesized Rehearsal): what the
/// model produces unprompted stands for what it knows. Implemented on top of the model's sampler.
/// </summary>
public interface IReplayTextGenerator
{
    /// <summary>
    /// Documents sampled deterministically from <paramref name="seed"/>, roughly <paramref name="tokenBudget"/>
    /// tokens in all. The caller stops enumerating once it has counted the budget with its own tokenizer.
    /// </summary>
    IEnumerable<string> Generate(int seed, long tokenBudget, CancellationToken cancellationToken);
}
