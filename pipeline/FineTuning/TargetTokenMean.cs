using Forgetless.Model;
using static TorchSharp.torch;

namespace Forgetless.FineTuning;

/// <summary>
/// The evaluation loop shared by the loss and KL probes: batches of prepared rows through one or more models in eval
/// mode without gradients, a per-batch sum over the scored target tokens, and the mean per target token. The models'
/// training flags are restored afterwards and no random generator is touched, so probing never perturbs a run.
/// </summary>
public static class TargetTokenMean
{
    /// <param name="sumOverTargets">The quantity summed over the batch's scored target tokens (inside a dispose scope).</param>
    public static double Of(IReadOnlyList<CausalLM> models, IReadOnlyList<PreparedRow> rows, int batchRows, Func<TokenBatch, double> sumOverTargets)
    {
        if (rows.Count == 0) return double.NaN;
        var wasTraining = models.Select(m => m.training).ToList();
        foreach (var m in models) m.eval();
        try
        {
            using var _ = no_grad();
            double sum = 0, count = 0;
            foreach (var chunk in rows.Chunk(batchRows))
            {
                using var scope = NewDisposeScope();
                using var batch = TokenBatch.Of(chunk);
                sum += sumOverTargets(batch);
                count += batch.TargetTokens;
            }
            return count > 0 ? sum / count : double.NaN;
        }
        finally
        {
            for (int i = 0; i < models.Count; i++) if (wasTraining[i]) models[i].train();
        }
    }
}
