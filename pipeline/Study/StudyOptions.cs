using System.Globalization;
using Forgetless.Configuration;

namespace Forgetless.Study;

/// <summary>
/// The <c>study</c> section (in forgetless.json or in a study file given with <c>--study FILE</c>): the cells of a
/// comparison, each a set of <c>section.key=value</c> settings over the pipeline, and the level of learning every cell
/// trains to. docs/study.md documents every key.
/// </summary>
public sealed class StudyOptions : IValidatableOptions
{
    /// <summary>Where the cells' run roots (ROOT/CELL/) and the report (ROOT/report/) go, relative to the pipeline file.</summary>
    public string Root { get; set; } = "runs/study";

    /// <summary>The learning every cell trains to; cells compare forgetting at this level.</summary>
    public StudyTarget Target { get; set; } = new();

    /// <summary>Most optimizer steps a cell may take to reach the target (sets <c>finetune.steps</c>; 0: the file's).</summary>
    public int StepCap { get; set; }

    /// <summary>Settings every cell shares, before its own (<c>"finetune.evalEvery": "10"</c>).</summary>
    public Dictionary<string, string> Settings { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The compact form: every combination of the axes' values is a cell, the first axis varying slowest.</summary>
    public List<StudyAxis> Grid { get; set; } = [];

    /// <summary>Cells named one by one, after the grid's.</summary>
    public List<StudyCellOptions> Cells { get; set; } = [];

    public IEnumerable<string> Validate()
    {
        // A pipeline file without a study is valid; `forgetless study` then says that it names no cells.
        if (Grid.Count == 0 && Cells.Count == 0) yield break;
        if (string.IsNullOrWhiteSpace(Root)) yield return "root: must name a folder for the cells' run roots";
        foreach (var error in Target.Validate()) yield return "target" + error;
        if (StepCap < 0) yield return $"stepCap = {StepCap}: must be 0 (the file's finetune.steps) or more";
        for (int i = 0; i < Grid.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(Grid[i].Key)) yield return $"grid[{i}].key: must name a setting (section.key)";
            if (Grid[i].Values.Count == 0) yield return $"grid[{i}].values: is empty; give at least one value";
        }
        for (int i = 0; i < Cells.Count; i++)
            if (!StudyCells.IsCellName(Cells[i].Name))
                yield return $"cells[{i}].name = '{Cells[i].Name}': must be letters, digits, '.', '-' or '_' (it names the cell's folder)";
    }
}

/// <summary>
/// The learning a cell must reach at one of finetune's evaluations: a validation task loss, or a held-out task
/// accuracy (one of the two kinds).
/// </summary>
public sealed class StudyTarget
{
    /// <summary>The kinds of target, as the keys that set them.</summary>
    public static readonly string[] Kinds = ["validationLoss", "heldoutAccuracy"];

    /// <summary>Nats per target token on the validation task rows (finetune.targetValidationLoss of every cell).</summary>
    public double ValidationLoss { get; set; }

    /// <summary>A rate in (0, 1] of an evaluate suite's accuracy metric (finetune.targetAccuracy of every cell).</summary>
    public double HeldoutAccuracy { get; set; }
    /// <summary>With heldoutAccuracy: the evaluate suite (finetune.targetAccuracySuite; unset: the first suite of role new that has an accuracy).</summary>
    public string? Suite { get; set; }
    /// <summary>With heldoutAccuracy: the suite's metric (finetune.targetAccuracyMetric; unset: acc).</summary>
    public string? Metric { get; set; }
    /// <summary>With heldoutAccuracy: the suite's first items scored at each evaluation (finetune.targetAccuracyItems; unset: 100).</summary>
    public int? Items { get; set; }

    public bool IsAccuracy => HeldoutAccuracy != 0;

    /// <summary>The finetune settings that make every cell train to this target.</summary>
    public IEnumerable<string> FineTuneSettings()
    {
        if (!IsAccuracy)
        {
            yield return "finetune.targetValidationLoss=" + F(ValidationLoss);
            yield break;
        }
        yield return "finetune.targetAccuracy=" + F(HeldoutAccuracy);
        if (Suite is not null) yield return "finetune.targetAccuracySuite=" + Suite;
        if (Metric is not null) yield return "finetune.targetAccuracyMetric=" + Metric;
        if (Items is { } items) yield return "finetune.targetAccuracyItems=" + items.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>Errors after "target" (".validationLoss = …", ": set one of …").</summary>
    public IEnumerable<string> Validate()
    {
        string kinds = "validationLoss (a validation task loss in nats per token, greater than 0) or heldoutAccuracy (a rate in (0, 1])";
        bool loss = ValidationLoss != 0, accuracy = HeldoutAccuracy != 0;
        if (loss && accuracy)
            yield return $": sets both validationLoss and heldoutAccuracy; set one kind of target: {kinds}";
        else if (!loss && !accuracy)
            yield return $": names no target; set one kind of target: {kinds}";
        else if (loss && !(ValidationLoss > 0))
            yield return $".validationLoss = {F(ValidationLoss)}: must be greater than 0 (the validation task loss every cell trains to)";
        else if (accuracy && !(HeldoutAccuracy is > 0 and <= 1))
            yield return $".heldoutAccuracy = {F(HeldoutAccuracy)}: must be a rate in (0, 1] (the held-out task accuracy every cell trains to)";
        if (!accuracy)
            foreach (var (key, set) in new[] { ("suite", Suite is not null), ("metric", Metric is not null), ("items", Items is not null) })
                if (set) yield return $".{key}: belongs to a heldoutAccuracy target; this study's target is validationLoss";
    }

    private static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}

/// <summary>One axis of the grid: a setting and its values; <see cref="Label"/> names it in cell names (default: the key's last part).</summary>
public sealed class StudyAxis
{
    public string Key { get; set; } = "";
    public string Label { get; set; } = "";
    public List<string> Values { get; set; } = [];
}

/// <summary>One cell named explicitly: its name (its folder) and its settings.</summary>
public sealed class StudyCellOptions
{
    public string Name { get; set; } = "";
    public Dictionary<string, string> Set { get; set; } = new(StringComparer.Ordinal);
}
