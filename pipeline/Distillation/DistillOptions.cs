using System.Globalization;
using Forgetless.Configuration;
using Forgetless.FineTuning;
using Forgetless.Training;

namespace Forgetless.Distill;

/// <summary>
/// The <c>distill</c> section of forgetless.json (docs/distill.md). The stage continues the FineTune stage's adapter
/// with loss = (1 − α)·CE(task rows) + α·T²·D(teacher_T ‖ student_T) on replay rows, the teacher's soft targets
/// read from a cached top-k teacher pass. Off unless a config turns it on (a user's own pipeline opts in); the
/// embedded default forgetless.json turns it on, so its run is prepare → finetune → distill → evaluate → package.
/// <c>--set distill.enabled=false</c> takes it out; then evaluate and package take finetune's adapter.
/// </summary>
public sealed class DistillOptions : IValidatableOptions
{
    /// <summary>When false the stage is not part of the pipeline and evaluate/package take finetune's adapter.</summary>
    public bool Enabled { get; set; }

    /// <summary>Hugging Face model folder of the teacher (same tokenizer as the base model); empty: the base model.</summary>
    public string Teacher { get; set; } = "";

    /// <summary>
    /// α: weight of the distillation term; 1 − α weighs the task cross-entropy. 0.9 because the task term keeps
    /// pulling away from the teacher: at α 0.5 (T 2) the KL to the teacher on held-out text rose on the default
    /// (docs/results.md).
    /// </summary>
    public double Alpha { get; set; } = 0.9;
    /// <summary>
    /// T for both sides. 1 by default: with a small vocabulary-wide model most of the teacher's mass at T 2 falls
    /// outside the cached top-k, where the student is not constrained, so a T 2 objective barely moves the T 1 KL.
    /// </summary>
    public double Temperature { get; set; } = 1.0;
    public KdDivergence Divergence { get; set; } = KdDivergence.ForwardKl;
    /// <summary>Generalized JSD's β (0: forward KL, 1: reverse KL); used with divergence generalizedJsd.</summary>
    public double Beta { get; set; } = 0.5;
    /// <summary>Multiply the distillation term by T² (Hinton et al.); false matches TRL's GKD.</summary>
    public bool ScaleByTemperatureSquared { get; set; } = true;

    /// <summary>Teacher log-probabilities kept per token; the rest of its mass is one tail bucket.</summary>
    public int TopK { get; set; } = 32;
    /// <summary>Replay rows of train.parquet the teacher scores and the student trains on (file order; 0: all).</summary>
    public int TeacherRows { get; set; } = 256;
    /// <summary>Task rows of train.parquet the student trains on alongside (file order; 0: all).</summary>
    public int TaskRows { get; set; } = 256;
    /// <summary>Rows per forward pass of the teacher pass.</summary>
    public int TeacherBatchRows { get; set; } = 8;

    public int Steps { get; set; } = 40;
    public int TokensPerBatch { get; set; } = 2048;
    public int GradientAccumulation { get; set; } = 1;
    public double LearningRate { get; set; } = 1e-3;
    public int WarmupSteps { get; set; } = 4;
    public double MinLrRatio { get; set; } = 0.1;
    public double ClipNorm { get; set; } = 1.0;
    [Configuration.DoesNotChangeResults] // logs only; the stage's results do not depend on it
    public int LogEvery { get; set; } = 5;
    public int EvalEvery { get; set; } = 20;
    [Configuration.DoesNotChangeResults] // a resumed run ends with the bytes of an uninterrupted one
    public int CheckpointEvery { get; set; } = 10;
    /// <summary>Validation task rows (validation.parquet) for the task loss before/after.</summary>
    public int ValidationSequences { get; set; } = 32;

    /// <summary>General text for the KL-to-teacher metric (fixed windows from the start of the file).</summary>
    public string Heldout { get; set; } = "data/corpora/heldout.txt";
    public int HeldoutWindows { get; set; } = 16;
    public int HeldoutWindowLength { get; set; } = 256;

    public KdOptions Kd => new()
    {
        Divergence = Divergence, Temperature = Temperature, Beta = Beta, ScaleByTemperatureSquared = ScaleByTemperatureSquared,
    };

    /// <summary>
    /// The training-loop options: this section's schedule with FineTune's weight decay. No best-weights keeping or
    /// early stopping on the task loss (that would undo the consolidation); the distillation term is the regularizer.
    /// </summary>
    public TrainingOptions Training(double weightDecay) => new()
    {
        Steps = Steps,
        TokensPerBatch = TokensPerBatch,
        GradientAccumulation = GradientAccumulation,
        LearningRate = LearningRate,
        WarmupSteps = WarmupSteps,
        MinLrRatio = MinLrRatio,
        WeightDecay = weightDecay,
        ClipNorm = ClipNorm,
        LogEvery = LogEvery,
        EvalEvery = EvalEvery,
        CheckpointEvery = CheckpointEvery,
        KeepBest = false,
    };

    public IEnumerable<string> Validate()
    {
        foreach (var (name, value) in new[]
                 {
                     ("topK", TopK), ("teacherBatchRows", TeacherBatchRows), ("steps", Steps), ("tokensPerBatch", TokensPerBatch),
                     ("gradientAccumulation", GradientAccumulation), ("logEvery", LogEvery), ("evalEvery", EvalEvery),
                     ("checkpointEvery", CheckpointEvery), ("validationSequences", ValidationSequences),
                     ("heldoutWindows", HeldoutWindows), ("heldoutWindowLength", HeldoutWindowLength),
                 })
            if (value <= 0) yield return $"{name} = {value}: must be a positive whole number";
        if (TeacherRows < 0) yield return $"teacherRows = {TeacherRows}: must be 0 (all replay rows) or more";
        if (TaskRows < 0) yield return $"taskRows = {TaskRows}: must be 0 (all task rows) or more";
        if (!(Alpha > 0) || Alpha > 1) yield return $"alpha = {F(Alpha)}: must be in (0, 1] (loss = (1 − α)·CE(task) + α·T²·D(replay))";
        if (!(Temperature > 0)) yield return $"temperature = {F(Temperature)}: must be greater than 0";
        if (Beta is < 0 or > 1 || double.IsNaN(Beta)) yield return $"beta = {F(Beta)}: must be in [0, 1]";
        if (!(LearningRate > 0)) yield return $"learningRate = {F(LearningRate)}: must be greater than 0";
        if (WarmupSteps < 0) yield return $"warmupSteps = {WarmupSteps}: must be 0 or more";
        if (MinLrRatio is < 0 or > 1 || double.IsNaN(MinLrRatio)) yield return $"minLrRatio = {F(MinLrRatio)}: must be in [0, 1]";
        if (!(ClipNorm > 0)) yield return $"clipNorm = {F(ClipNorm)}: must be greater than 0";
        if (string.IsNullOrWhiteSpace(Heldout)) yield return "heldout: must name a text file of general text";
    }

    private static string F(double v) => v.ToString(CultureInfo.InvariantCulture);
}
