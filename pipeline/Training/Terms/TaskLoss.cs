using Forgetless.FineTuning;
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

    public override TermValue? BatchLoss(TermBatch batch)
    {
        var tokens = batch.Tokens;
        var nll = LossProbe.TokenNll(batch.Logits, tokens.Targets);
        var plain = nll.mul(tokens.TargetMask).sum();
        Tensor loss;
        if (TaskRowWeight == 1 && ReplayRowWeight == 1)
        {
            loss = plain.div(batch.StepTargetTokens);
        }
        else if (batch.HasReplay)
        {
            // Per row r·is_replay + t·(1 − is_replay): exactly r or t, computed where the batch lives.
            var replay = tokens.IsReplay.to(ScalarType.Float64);
            var rowWeight = replay.mul(ReplayRowWeight).add(replay.neg().add(1).mul(TaskRowWeight)).to(ScalarType.Float32).unsqueeze(1);
            loss = nll.mul(tokens.TargetMask).mul(rowWeight).sum().div(batch.StepTargetTokens);
        }
        else
        {
            loss = TaskRowWeight == 1 ? plain.div(batch.StepTargetTokens) : plain.mul(TaskRowWeight).div(batch.StepTargetTokens);
        }
        return new TermValue(loss, plain.detach(), batch.StepTargetTokens);
    }
}
