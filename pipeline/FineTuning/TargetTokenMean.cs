using Forgetless.Model;
using Forgetless.Model.Devices;
using static TorchSharp.torch;

namespace Forgetless.FineTuning;

/// <summary>
/// The evaluation loop shared by the loss and KL probes: batches of prepared rows through one or more models in eval
/// mode without gradients, a per-batch sum over the scored target tokens, and the mean per target token. The models'
/// training flags are restored afterwards and no random generator is touched, so probing never perturbs a run.
/// </summary>
public static class TargetTokenMean
{
    /// <param name="sumOverTargets">
    /// The quantity summed over the batch's scored target tokens, as a one-element tensor on the device (inside a dispose
    /// scope). The per-batch sums are added up in f64 on the device and read once at the end: one synchronisation per
    /// probe, not per batch.
    /// </param>
    public static double Of(IReadOnlyList<CausalLM> models, IReadOnlyList<PreparedRow> rows, int batchRows, Func<TokenBatch, Tensor> sumOverTargets)
    {
        if (rows.Count == 0) return double.NaN;
        var wasTraining = models.Select(m => m.training).ToList();
        foreach (var m in models) m.eval();
        try
        {
            using var _ = no_grad();
            var device = models[0].Device;
            using var sum = zeros(1, ScalarType.Float64, device: device);
            double count = 0;
            foreach (var chunk in rows.Chunk(batchRows))
            {
                using var scope = NewDisposeScope();
                using var batch = TokenBatch.Of(chunk, device);
                // f32 widened to f64 exactly, then added in f64: the same sum the host made of read values.
                sum.add_(sumOverTargets(batch).to(ScalarType.Float64).reshape(1), Model.Scalars.One);
                count += batch.TargetTokens;
            }
            return count > 0 ? HostValues.Scalar(sum) / count : double.NaN;
        }
        finally
        {
            for (int i = 0; i < models.Count; i++) if (wasTraining[i]) models[i].train();
        }
    }
}
