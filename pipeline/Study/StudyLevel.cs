using System.Globalization;
using System.Text.Json.Nodes;
using Forgetless.Evaluation;
using Forgetless.FineTuning;

namespace Forgetless.Study;

/// <summary>
/// The study's target as the report states it: a validation task loss to reach (at or below), or a held-out task
/// accuracy (at or above) — its suite, metric and the number of the suite's first items finetune scores for it.
/// </summary>
public sealed record StudyLevel(double Value, string? Suite = null, string? Metric = null, int? Items = null)
{
    public bool IsAccuracy => Suite is not null;

    /// <summary>The level of <paramref name="target"/>, its accuracy suite resolved as finetune resolves it.</summary>
    public static StudyLevel Of(StudyTarget target, EvaluateOptions evaluate)
    {
        if (!target.IsAccuracy) return new StudyLevel(target.ValidationLoss);
        var finetune = new FineTuneOptions
        {
            TargetAccuracy = target.HeldoutAccuracy, TargetAccuracySuite = target.Suite, TargetAccuracyMetric = target.Metric, TargetAccuracyItems = target.Items,
        };
        var probe = AccuracyTarget.Of(finetune, evaluate, path => path)!;
        return new StudyLevel(target.HeldoutAccuracy, probe.Suite.Name, probe.Metric, probe.Suite.Limit);
    }

    /// <summary>"a validation task loss of 0.8" / "a held-out postag acc of 0.6 (its first 100 items)".</summary>
    public string Describe => IsAccuracy
        ? I($"a held-out {Suite} {Metric} of {Value} (its first {Items} items)")
        : I($"a validation task loss of {Value}");

    /// <summary>"validation task loss ≤ 0.8" / "held-out postag acc ≥ 0.6 on its first 100 items".</summary>
    public string Condition => IsAccuracy
        ? I($"held-out {Suite} {Metric} ≥ {Value} on its first {Items} items")
        : I($"validation task loss ≤ {Value}");

    /// <summary>"validation task loss 0.8" / "held-out postag acc 0.6 (its first 100 items)": what a missed cell did not reach (JUnit).</summary>
    public string Name => IsAccuracy
        ? I($"held-out {Suite} {Metric} {Value} (its first {Items} items)")
        : I($"validation task loss {Value}");

    /// <summary>The cell's best value of what the target measures (the table's "learning reached").</summary>
    public double? BestOf(CellResult cell) => IsAccuracy ? cell.BestAccuracy : cell.BestValidationLoss;

    public JsonObject Json(int stepCap) => IsAccuracy
        ? new JsonObject
        {
            ["heldout_task_accuracy"] = Value, ["suite"] = Suite, ["metric"] = Metric, ["items"] = Items, ["step_cap"] = stepCap > 0 ? stepCap : null,
        }
        : new JsonObject { ["validation_task_loss"] = Value, ["step_cap"] = stepCap > 0 ? stepCap : null };

    private static string I(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
