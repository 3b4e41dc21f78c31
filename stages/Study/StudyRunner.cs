using System.Globalization;
using Forgetless.Configuration;
using Forgetless.Runs;
using Forgetless.Study;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.Study;

/// <summary>
/// Runs a study's cells and reports them. Each cell is the normal pipeline (prepare → finetune → [distill] → evaluate)
/// in its own run root, ROOT/CELL/, through the run store: a cell that is up to date is skipped, a killed one resumes
/// from its checkpoints, and a changed setting makes only that cell's stages stale. Every cell's configuration is the
/// pipeline file with the study's settings, the cell's settings and the study's target layered over it
/// (<see cref="PipelineConfig.With"/>), all checked before any cell runs.
/// </summary>
public sealed class StudyRunner
{
    private readonly PipelineConfig config;
    private readonly ILogger logger;

    public StudyRunner(PipelineConfig config, ILogger logger)
    {
        this.config = config;
        this.logger = logger;
        Options = config.Section<StudyOptions>("study");
        Cells = StudyCells.Expand(Options);
        Root = config.ResolvePath(Options.Root);
    }

    public StudyOptions Options { get; }
    public IReadOnlyList<StudyCell> Cells { get; }
    /// <summary>The study root: one run root per cell, and report/.</summary>
    public string Root { get; }
    public string ReportDirectory => Path.Combine(Root, StudyCells.ReportFolder);

    /// <summary>A cell's configuration, rooted at <paramref name="cellRoot"/>: the study's target and step cap win over the cell's own settings.</summary>
    public PipelineConfig CellConfig(StudyCell cell, string cellRoot)
    {
        List<string> enforced =
        [
            "run.root=" + cellRoot,
            // Content-keyed caches shared by the cells: the base model is scored once per study, not once per cell.
            "run.cacheRoot=" + Path.Combine(Root, ".cache"),
            .. Options.Target.FineTuneSettings(),
        ];
        if (Options.StepCap > 0) enforced.Add("finetune.steps=" + Options.StepCap.ToString(CultureInfo.InvariantCulture));
        return config.With([.. cell.Assignments, .. enforced], $"study cell {cell.Name}:");
    }

    /// <summary>The cell's stages up to evaluate (a study never packages), in pipeline order.</summary>
    public IReadOnlyList<IStage> CellStages(StudyCell cell, string cellRoot)
    {
        var config = CellConfig(cell, cellRoot);
        try
        {
            return StageRegistry.Build(new StageContext(config)).TakeWhile(s => s.Name != "package").ToList();
        }
        catch (ConfigException e)
        {
            // A setting that is wrong only together with another section (finetune's target accuracy names an evaluate suite).
            throw new ConfigException($"study cell {cell.Name}: {e.Message}");
        }
    }

    /// <summary>
    /// Starts a cell that has work in a process of its own (<see cref="CellProcess"/>), so that its peak memory is its
    /// own. Null: the cells run in this process (tests; and the cell's own process itself), and no peak is recorded.
    /// </summary>
    public Func<StudyCell, CancellationToken, Task>? RunElsewhere { get; init; }

    /// <summary>Runs the given cells one after another; the first failure stops the study (a rerun resumes it).</summary>
    public async Task RunAsync(IReadOnlyList<StudyCell> cells, CancellationToken cancellationToken)
    {
        // Every cell's settings are checked before the first one trains: a typo in cell 12 is not found hours in.
        var plans = cells.Select(c => (Cell: c, Stages: CellStages(c, Path.Combine(Root, c.Name)))).ToList();
        for (int i = 0; i < plans.Count; i++)
        {
            var (cell, stages) = plans[i];
            cancellationToken.ThrowIfCancellationRequested();
            var stale = StaleStages(cell, stages);
            logger.LogInformation("study: cell {Index}/{Count} {Cell}: {Work}", i + 1, plans.Count, cell.Name,
                stale.Count == 0 ? "up to date" : "running " + string.Join(", ", stale));
            if (stale.Count == 0) continue;
            if (RunElsewhere is { } start) await start(cell, cancellationToken);
            else await RunHereAsync(cell, stages, recordPeakMemory: false, cancellationToken);
        }
    }

    /// <summary>
    /// Runs one cell's stale stages in this process. <paramref name="recordPeakMemory"/>: this process is the cell's own,
    /// so the peak resident set after each training stage is the cell's (<see cref="CellMemory"/>).
    /// </summary>
    public async Task RunHereAsync(StudyCell cell, IReadOnlyList<IStage> stages, bool recordPeakMemory, CancellationToken cancellationToken)
    {
        string cellRoot = Path.Combine(Root, cell.Name);
        var store = new RunStore(cellRoot, ToolVersion.Current, logger);
        foreach (var stage in PipelineStatus.Plan(store, stages, "evaluate"))
        {
            var result = await store.RunAsync(stage, force: false, cancellationToken);
            if (recordPeakMemory && !result.Skipped && CellMemory.TrainingStages.Contains(stage.Name))
                CellMemory.Record(cellRoot, stage.Name, CellMemory.ProcessPeakBytes());
        }
    }

    /// <summary>The names of the cell's stages that are not up to date (the plan always names its target).</summary>
    public IReadOnlyList<string> StaleStages(StudyCell cell, IReadOnlyList<IStage> stages) =>
        PipelineStatus.Of(new RunStore(Path.Combine(Root, cell.Name), ToolVersion.Current, logger), stages)
            .Where(s => !s.IsUpToDate).Select(s => s.Stage).ToList();

    /// <summary>The report of every cell of the study, read from the cells' run roots under <paramref name="roots"/> (the first root that has the cell).</summary>
    public StudyReport Report(IReadOnlyList<string> roots, bool verify)
    {
        var results = new List<CellResult>();
        var timings = new List<CellTimings>();
        foreach (var cell in Cells)
        {
            string? cellRoot = roots.Select(r => Path.Combine(r, cell.Name)).FirstOrDefault(r => StageManifest.TryRead(Path.Combine(r, "evaluate")) is not null);
            if (cellRoot is null)
                throw new UserInputException($"study: cell '{cell.Name}' has no completed evaluate stage under {string.Join(", ", roots)}; " +
                                             "run its shard (forgetless study --shard i/n) or `forgetless study` to finish it");
            if (verify) Verify(cell, cellRoot);
            var (result, timing) = CellResults.Read(cell, cellRoot);
            results.Add(result);
            timings.Add(timing);
        }
        return new StudyReport(StudyLevel.Of(Options.Target, config.Section<Evaluation.EvaluateOptions>("evaluate")), Options.StepCap, results, timings);
    }

    /// <summary>
    /// A merged cell must be the cell this study file describes, completed and untouched: each stage's manifest matches
    /// the fingerprint of the cell's configuration now and the hashes of its published outputs.
    /// </summary>
    private void Verify(StudyCell cell, string cellRoot)
    {
        var store = new RunStore(cellRoot, ToolVersion.Current, logger);
        var stale = PipelineStatus.Of(store, CellStages(cell, cellRoot)).Where(s => !s.IsUpToDate).ToList();
        if (stale.Count > 0)
            throw new UserInputException($"study merge: cell '{cell.Name}' in {cellRoot} does not match this study: " +
                                         string.Join("; ", stale.Select(s => $"{s.Stage} {string.Join(", ", s.Reasons)}")));
    }
}
