using Forgetless.Model;
using Forgetless.Model.Inference;

namespace Forgetless.Data;

/// <summary>
/// Replay text sampled from the base model itself (Self-Synthesized Rehearsal): for users who no
/// longer have the data the model was trained on. Each document starts from the start token and
/// runs to the end-of-text token or <see cref="MaxTokensPerDocument"/>.
/// </summary>
public sealed class ModelReplayGenerator(string modelDirectory, Model.Devices.Placement? placement = null) : IReplayTextGenerator
{
    public int MaxTokensPerDocument { get; init; } = 256;
    public double Temperature { get; init; } = 1.0;
    public double TopP { get; init; } = 0.95;

    public IEnumerable<string> Generate(int seed, long tokenBudget, CancellationToken cancellationToken)
    {
        var loaded = ModelFolder.Load(modelDirectory, placement: placement);
        var tokenizer = loaded.Tokenizer ?? throw new UserInputException($"{modelDirectory}: generated replay needs the model's tokenizer files");
        var generator = new TextGenerator(loaded.Model, tokenizer);
        long produced = 0;
        for (int document = 0; produced < tokenBudget; document++)
        {
            var result = generator.Generate([], new GenerationOptions
            {
                MaxNewTokens = (int)Math.Min(MaxTokensPerDocument, Math.Max(1, tokenBudget - produced)),
                Temperature = Temperature,
                TopP = TopP,
                Seed = (long)seed * 1_000_003 + document,
            }, cancellationToken);
            produced += Math.Max(1, result.TokenIds.Count);
            if (result.Text.Trim().Length > 0) yield return result.Text.Trim();
        }
    }
}
