using Forgetless.FineTuning;
using Forgetless.Model;
using Forgetless.Training;
using TorchSharp;
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
    private readonly Scalar taskWeight = taskRowWeight.ToScalar(), replayWeight = replayRowWeight.ToScalar(); // held (Scalars.cs)

    public override bool ReadsLogits => false;

    public override TermValue? BatchLoss(TermBatch batch)
    {
        var tokens = batch.Tokens;
        if (!batch.HasLogits && batch.Hidden is { } hidden && batch.OutputWeight is { } head) return Chunked(batch, hidden, head);
        var nll = LossProbe.TokenNll(batch.Logits, tokens.Targets);
        var plain = nll.mul(tokens.TargetMask).sum();
        using Scalar stepTokens = batch.StepTargetTokens;
        Tensor loss;
        if (TaskRowWeight == 1 && ReplayRowWeight == 1)
        {
            loss = plain.div(stepTokens);
        }
        else if (batch.HasReplay)
        {
            loss = nll.mul(tokens.TargetMask).mul(RowWeights(batch)).sum().div(stepTokens);
        }
        else
        {
            loss = TaskRowWeight == 1 ? plain.div(stepTokens) : plain.mul(taskWeight).div(stepTokens);
        }
        return new TermValue(loss, plain.detach(), batch.StepTargetTokens);
    }

    /// <summary>The same loss without the whole logits: per-token weights mask × row weight / step tokens, projected a chunk at a time.</summary>
    private TermValue Chunked(TermBatch batch, Tensor hidden, Tensor head)
    {
        var tokens = batch.Tokens;
        var mask = tokens.TargetMask;                                                  // [B, W − 1]
        using Scalar stepTokens = batch.StepTargetTokens;
        var weights = mask.div(stepTokens);
        if (batch.HasReplay && !(TaskRowWeight == 1 && ReplayRowWeight == 1)) weights = weights.mul(RowWeights(batch));
        else if (TaskRowWeight != 1) weights = weights.mul(taskWeight);
        var scored = hidden.narrow(1, 0, tokens.Targets.shape[1]);                     // position t predicts t + 1
        var (loss, plain) = ChunkedCrossEntropy.Of(scored.reshape(-1, scored.shape[^1]), head, tokens.Targets.reshape(-1),
            weights.reshape(-1), mask.reshape(-1));
        return new TermValue(loss, plain, batch.StepTargetTokens);
    }

    /// <summary>Per row r·is_replay + t·(1 − is_replay) [B, 1]: exactly r or t, computed where the batch lives.</summary>
    private Tensor RowWeights(TermBatch batch)
    {
        var replay = batch.Tokens.IsReplay.to(ScalarType.Float64);
        return replay.mul(replayWeight).add(replay.neg().add(Scalars.One, Scalars.One).mul(taskWeight), Scalars.One).to(ScalarType.Float32).unsqueeze(1);
    }
}
