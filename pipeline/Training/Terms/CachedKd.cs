using Forgetless.Model.Devices;
using Forgetless.FineTuning;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Training.Terms;

/// <summary>Soft targets of a teacher for given rows, e.g. read from a cached teacher pass.</summary>
public interface ITeacherTargets
{
    /// <summary>
    /// The distillation loss (reduced over the rows' scored target positions, T²-scaled per <paramref name="options"/>)
    /// of <paramref name="studentLogits"/> [R, W − 1, V] — next-token logits of <paramref name="rows"/> as batched by
    /// <see cref="TokenBatch.Of"/> — against the teacher's targets for those rows.
    /// </summary>
    Tensor Loss(IReadOnlyList<PreparedRow> rows, Tensor studentLogits, KdOptions options);
}

/// <summary>
/// Distillation against a teacher kept as cached soft targets (the Distill stage's top-k teacher pass): on replay
/// rows, α·D(teacher_T ‖ student_T)·T². No teacher runs while training.
/// </summary>
public sealed class CachedKd(ITeacherTargets teacher, KdOptions options, double weight) : TrainingTerm
{
    public override string Name => "kd";

    public override TermValue? BatchLoss(TermBatch batch)
    {
        if (!batch.HasReplay) return null;
        var replay = batch.ReplayIndices();
        var width = batch.Tokens.Targets.shape[1];
        var kd = teacher.Loss(batch.Rows.Where(r => r.IsReplay).ToList(), DeviceOps.Rows(batch.Logits, replay).narrow(1, 0, width), options);
        using var share = (weight / batch.MicroBatches).ToScalar();
        return new TermValue(kd.mul(share), kd.detach(), batch.MicroBatches);
    }
}
