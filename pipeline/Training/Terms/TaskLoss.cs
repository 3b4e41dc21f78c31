using Forgetless.FineTuning;
using Forgetless.Training;
using static TorchSharp.torch;

namespace Forgetless.Training.Terms;

/// <summary>
/// The task: next-token cross-entropy over the scored target tokens, summed and divided by the step's target tokens,
/// with a weight per row kind. FineTune trains task and replay rows alike (weights 1, 1; a kd term claims part of the
/// replay weight); Distill weighs task rows by 1 − α and replay rows by 0 (the teacher term teaches those).
/// Logged as <c>loss</c>: the unweighted mean cross-entropy, comparable across methods and terms.
/// </summary>
public sealed class TaskLoss(double taskRowWeight = 1, double replayRowWeight = 1) : TrainingTerm
{
    public const string LoggedName = "loss";

    public override string Name => LoggedName;
    public double TaskRowWeight { get; } = taskRowWeight;
    public double ReplayRowWeight { get; } = replayRowWeight;

    public override bool ReadsLogits => false;

    public override TermValue? BatchLoss(TermBatch batch)
    {
        var tokens = batch.Tokens;
        if (!batch.HasLogits && batch.Hidden is { } hidden && batch.OutputWeight is { } head) return Chunked(batch, hidden, head);
        var nll = LossProbe.TokenNll(batch.Logits, tokens.Targets);
        var plain = nll.mul(tokens.TargetMask).sum();
        Tensor loss;
        if (TaskRowWeight == 1 && ReplayRowWeight == 1)
        {
            loss = plain.div(batch.StepTargetTokens);
        }
        else if (batch.HasReplay)
        {
            loss = nll.mul(tokens.TargetMask).mul(RowWeights(batch)).sum().div(batch.StepTargetTokens);
        }
        else
        {
            loss = TaskRowWeight == 1 ? plain.div(batch.StepTargetTokens) : plain.mul(TaskRowWeight).div(batch.StepTargetTokens);
        }
        return new TermValue(loss, plain.detach(), batch.StepTargetTokens);
    }

    /// <summary>The same loss without the whole logits: per-token weights mask × row weight / step tokens, projected a chunk at a time.</summary>
    private TermValue Chunked(TermBatch batch, Tensor hidden, Tensor head)
    {
        var tokens = batch.Tokens;
        var mask = tokens.TargetMask;                                                  // [B, W − 1]
        var weights = mask.div(batch.StepTargetTokens);
        if (batch.HasReplay && !(TaskRowWeight == 1 && ReplayRowWeight == 1)) weights = weights.mul(RowWeights(batch));
        else if (TaskRowWeight != 1) weights = weights.mul(TaskRowWeight);
        var scored = hidden.narrow(1, 0, tokens.Targets.shape[1]);                     // position t predicts t + 1
        var (loss, plain) = ChunkedCrossEntropy.Of(scored.reshape(-1, scored.shape[^1]), head, tokens.Targets.reshape(-1),
            weights.reshape(-1), mask.reshape(-1));
        return new TermValue(loss, plain, batch.StepTargetTokens);
    }

    /// <summary>Per row r·is_replay + t·(1 − is_replay) [B, 1]: exactly r or t, computed where the batch lives.</summary>
    private Tensor RowWeights(TermBatch batch)
    {
        var replay = batch.Tokens.IsReplay.to(ScalarType.Float64);
        return replay.mul(ReplayRowWeight).add(replay.neg().add(1).mul(TaskRowWeight)).to(ScalarType.Float32).unsqueeze(1);
    }
}
