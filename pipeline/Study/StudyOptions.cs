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
        if (!(Target.ValidationLoss > 0))
            yield return $"target.validationLoss = {Target.ValidationLoss.ToString(CultureInfo.InvariantCulture)}: must be greater than 0 " +
                         "(the validation task loss every cell trains to)";
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

/// <summary>The learning a cell must reach: the validation task loss at one of finetune's evaluations.</summary>
public sealed class StudyTarget
{
    /// <summary>Nats per target token on the validation task rows (finetune.targetValidationLoss of every cell).</summary>
    public double ValidationLoss { get; set; }
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
