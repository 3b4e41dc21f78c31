using System.Globalization;
using Forgetless.Configuration;

namespace Forgetless.Continual;

/// <summary>
/// The <c>continual</c> section of forgetless.json: a sequence of tasks the model learns one after the other, and the
/// strategies compared on it (docs/continual.md). Each strategy runs the whole sequence; each of its steps is the normal
/// prepare → finetune pipeline (the pipeline file's sections, with the strategy's settings on top) in a run root of its
/// own, so every step is cached and a change reruns only what it affects.
/// </summary>
public sealed class ContinualOptions : IValidatableOptions
{
    /// <summary>The tasks in training order.</summary>
    public List<ContinualTask> Tasks { get; set; } = [];

    /// <summary>Settings every step gets before its strategy's (e.g. fewer fine-tuning steps per task).</summary>
    public List<string> Settings { get; set; } = [];

    /// <summary>The strategies compared on the sequence; <c>forgetless continual --strategy NAME</c> runs some.</summary>
    public List<ContinualStrategy> Strategies { get; set; } = [];

    /// <summary>Items of each task's suite scored after every step (0: all).</summary>
    public int SuiteLimit { get; set; } = 200;

    /// <summary>Names of <c>evaluate.suites</c> (old knowledge) scored after every step beside the tasks.</summary>
    public List<string> OldSuites { get; set; } = [];

    /// <summary>Training prompts per task the router's centroids are computed from.</summary>
    public int RouterSamples { get; set; } = 200;

    public int BootstrapResamples { get; set; } = 1000;

    public ReptileOptions Reptile { get; set; } = new();

    /// <summary>Bounds on a strategy's ACC, BWT, FWT, forgetting or a cell of R; <c>forgetless continual</c> exits 4 when one fails.</summary>
    public List<ContinualGateOptions> Gates { get; set; } = [];

    public IEnumerable<string> Validate()
    {
        for (int i = 0; i < Tasks.Count; i++)
            foreach (var e in Tasks[i].Validate()) yield return $"tasks[{i}].{e}";
        foreach (var dup in Tasks.GroupBy(t => t.Name).Where(g => g.Count() > 1)) yield return $"tasks: '{dup.Key}' is named twice";
        for (int i = 0; i < Strategies.Count; i++)
            foreach (var e in Strategies[i].Validate()) yield return $"strategies[{i}].{e}";
        foreach (var dup in Strategies.GroupBy(s => s.Name).Where(g => g.Count() > 1)) yield return $"strategies: '{dup.Key}' is named twice";
        if (SuiteLimit < 0) yield return $"suiteLimit = {SuiteLimit}: must be 0 (all) or more";
        if (RouterSamples <= 0) yield return $"routerSamples = {RouterSamples}: must be a positive whole number";
        if (BootstrapResamples <= 0) yield return $"bootstrapResamples = {BootstrapResamples}: must be a positive whole number";
        foreach (var e in Reptile.Validate()) yield return "reptile." + e;
        var taskNames = Tasks.Select(t => t.Name).ToList();
        var strategyNames = Strategies.Select(s => s.Name).ToList();
        for (int i = 0; i < Gates.Count; i++)
            foreach (var e in Gates[i].Validate(taskNames, strategyNames)) yield return $"gates[{i}].{e}";
    }
}

/// <summary>One task of a sequence: its training rows (prompt/response JSON lines) and its held-out suite.</summary>
public sealed class ContinualTask
{
    public string Name { get; set; } = "";
    /// <summary>Training rows, JSON lines with <see cref="PromptField"/> and <see cref="ResponseField"/> (gzip allowed).</summary>
    public string Train { get; set; } = "";
    /// <summary>The held-out suite: multiple choice among the task's labels (<c>query</c>, <c>choices</c>, <c>gold</c>).</summary>
    public string Suite { get; set; } = "";
    /// <summary>The suite's metric that fills the accuracy matrix.</summary>
    public string Metric { get; set; } = "acc";
    public string PromptField { get; set; } = "prompt";
    public string ResponseField { get; set; } = "response";

    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(Name) || Name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_')))
            yield return $"name = '{Name}': must be a word of letters, digits, '-' or '_' (it names folders)";
        if (string.IsNullOrWhiteSpace(Train)) yield return "train: must name the task's training rows";
        if (string.IsNullOrWhiteSpace(Suite)) yield return "suite: must name the task's held-out suite";
    }
}

/// <summary>How a strategy learns the sequence.</summary>
public enum Isolation
{
    /// <summary>One adapter carried from task to task (each step continues the previous step's adapter).</summary>
    Shared,
    /// <summary>A fresh adapter per task over the frozen base; a task is answered with its own adapter (chosen by name or a router).</summary>
    PerTask,
}

/// <summary>A way to learn a sequence: settings on top of the pipeline's, and replay, teacher and isolation choices.</summary>
public sealed class ContinualStrategy
{
    public string Name { get; set; } = "";
    public string Description { get; set; } = "";
    /// <summary><c>section.key=value</c> settings of this strategy (e.g. <c>finetune.regularizers=[ewc]</c>).</summary>
    public List<string> Settings { get; set; } = [];
    /// <summary>Rows of earlier tasks kept by reservoir sampling and mixed into later steps as replay (0: none).</summary>
    public int ReplayRows { get; set; }
    /// <summary>Share of the replay tokens that comes from that buffer (the rest from the pipeline's replay sources).</summary>
    public double ReplayBufferShare { get; set; } = 0.5;
    /// <summary>With the kd term: distil toward the previous step's model instead of the base model.</summary>
    public bool TeacherIsPrevious { get; set; }
    public Isolation Isolation { get; set; } = Isolation.Shared;

    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(Name) || Name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_')))
            yield return $"name = '{Name}': must be a word of letters, digits, '-' or '_' (it names folders)";
        if (ReplayRows < 0) yield return $"replayRows = {ReplayRows}: must be 0 (no buffer) or more";
        if (ReplayBufferShare is <= 0 or > 1 || double.IsNaN(ReplayBufferShare))
            yield return $"replayBufferShare = {ReplayBufferShare.ToString(CultureInfo.InvariantCulture)}: must be in (0, 1]";
        if (Isolation == Isolation.PerTask && (ReplayRows > 0 || TeacherIsPrevious))
            yield return "isolation = perTask: trains each task from the base alone; replayRows and teacherIsPrevious do not apply";
    }
}

/// <summary>
/// <c>continual.reptile</c>: first-order meta-learning (Reptile, Nichol et al. 2018) of an adapter initialisation over
/// the tasks but <see cref="HeldOutTask"/>, then fine-tuning that task from it and from a fresh adapter.
/// </summary>
public sealed class ReptileOptions
{
    /// <summary>The task left out of meta-training (the last one when empty).</summary>
    public string HeldOutTask { get; set; } = "";
    public int MetaIterations { get; set; } = 24;
    /// <summary>Steps on one task per meta-iteration (the inner loop).</summary>
    public int InnerSteps { get; set; } = 5;
    public double InnerLearningRate { get; set; } = 5e-3;
    /// <summary>ε of φ ← φ + ε(φ' − φ).</summary>
    public double OuterStepSize { get; set; } = 0.5;
    /// <summary>Fine-tuning steps on the held-out task from each initialisation.</summary>
    public int FineTuneSteps { get; set; } = 60;
    /// <summary>Validation loss "reached" for the steps-to-learn comparison.</summary>
    public double TargetValidationLoss { get; set; } = 0.8;
    /// <summary>Token budget of one inner or fine-tuning step.</summary>
    public int TokensPerBatch { get; set; } = 2048;

    public IEnumerable<string> Validate()
    {
        foreach (var (name, value) in new[] { ("metaIterations", MetaIterations), ("innerSteps", InnerSteps), ("fineTuneSteps", FineTuneSteps), ("tokensPerBatch", TokensPerBatch) })
            if (value <= 0) yield return $"{name} = {value}: must be a positive whole number";
        if (!(InnerLearningRate > 0)) yield return $"innerLearningRate = {InnerLearningRate.ToString(CultureInfo.InvariantCulture)}: must be greater than 0";
        if (OuterStepSize is <= 0 or > 1 || double.IsNaN(OuterStepSize)) yield return $"outerStepSize = {OuterStepSize.ToString(CultureInfo.InvariantCulture)}: must be in (0, 1]";
        if (!(TargetValidationLoss > 0)) yield return $"targetValidationLoss = {TargetValidationLoss.ToString(CultureInfo.InvariantCulture)}: must be greater than 0";
    }
}
