namespace Forgetless.FineTuning;

/// <summary>
/// How the <see cref="Trainer"/> runs: steps, batches, schedule, clipping, evaluation and checkpoint cadence, and the
/// stopping rules. FineTune and Distill each derive it from their own section.
/// </summary>
public sealed record TrainingOptions
{
    /// <summary>Optimizer steps (each of <see cref="GradientAccumulation"/> micro-batches).</summary>
    public int Steps { get; init; } = 160;
    /// <summary>Non-padding tokens per micro-batch: whole sequences are added while they fit (at least one).</summary>
    public int TokensPerBatch { get; init; } = 2048;
    public int GradientAccumulation { get; init; } = 1;
    public double LearningRate { get; init; } = 2e-3;
    public int WarmupSteps { get; init; } = 20;
    public double MinLrRatio { get; init; } = 0.1;
    public double WeightDecay { get; init; }
    public double ClipNorm { get; init; } = 1.0;
    public int LogEvery { get; init; } = 10;
    public int EvalEvery { get; init; } = 40;
    public int CheckpointEvery { get; init; } = 20;
    /// <summary>Keep the weights of the evaluation with the best validation task loss.</summary>
    public bool KeepBest { get; init; } = true;
    /// <summary>Stop after this many evaluations without a better validation task loss (0: never).</summary>
    public int EarlyStoppingPatience { get; init; }
    /// <summary>Stop as soon as the validation task loss is at or below this (0: off).</summary>
    public double TargetValidationLoss { get; init; }
    /// <summary>Stop as soon as the held-out task accuracy (<see cref="Trainer.HeldoutAccuracy"/>) is at or above this (0: off).</summary>
    public double TargetAccuracy { get; init; }
    /// <summary>Dynamic loss scaling (<see cref="Training.LossScaler"/>): on for f16 activations, which underflow without it.</summary>
    public bool LossScaling { get; init; }
    /// <summary>Whether the task loss projects hidden states a chunk at a time instead of making the whole logits.</summary>
    public Training.ChunkedLoss ChunkedLoss { get; init; }
}
