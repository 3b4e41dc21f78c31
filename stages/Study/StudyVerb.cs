using Forgetless.Configuration;
using Forgetless.Runs;
using Forgetless.Study;
using Forgetless.Stages.Cli;
using Forgetless.Stages.Verbs;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.Study;

/// <summary>
/// `forgetless study [--study FILE] [--shard i/n]`: runs a study's cells (each a cached, resumable pipeline in its own
/// run root) and, unless sharded, writes the report to ROOT/report/. `forgetless study merge DIR... [--output DIR]`
/// verifies the cells that shards left under each DIR and writes the one report of the whole study (docs/study.md).
/// </summary>
public static class StudyVerb
{
    public static Verb Definition { get; } = new(
        "study",
        "forgetless study [merge DIR...] [--study FILE] [--shard i/n] [--output DIR] [--config FILE] [--set KEY=VALUE]... [--cell NAME]",
        "compare methods at equal learning: one pipeline per cell, the Pareto frontier of forgetting, a chart and a recommendation",
        Register);

    private static void Register(VerbContext context)
    {
        var cli = context.Cli;
        bool merge = cli.Positional.Count > 0 && cli.Positional[0] == "merge";
        if (cli.Positional.Count > 0 && !merge)
            throw new UsageException($"study: unknown argument '{cli.Positional[0]}'; expected `study` or `study merge DIR...`");
        var config = StudyConfig(context);
        var shard = cli.Option("shard") is { } text ? StudyCells.ParseShard(text) : ((int Index, int Count)?)null;
        string? output = cli.Option("output");
        if (merge && shard is not null) throw new UsageException("study merge: --shard is for running cells, not for merging");
        if (!merge && output is not null) throw new UsageException("study: --output is for `study merge`; a study writes its report to STUDY_ROOT/report");
        var dirs = cli.Positional.Skip(1).Select(Path.GetFullPath).ToList();
        if (merge && dirs.Count == 0) throw new UsageException("study merge: name the study roots the shards wrote (study merge DIR...)");
        string? oneCell = cli.Option("cell");
        if (merge && oneCell is not null) throw new UsageException("study merge: --cell is for running one cell, not for merging");

        var study = config.Section<StudyOptions>("study");
        StudyCells.Expand(study); // no cells, or a name twice: exit 2 before anything starts
        string root = config.ResolvePath(study.Root);
        // The study holds its root; a cell's own process (--cell, started by the study) holds the cell's run root.
        if (oneCell is not null) context.LockRoot(Path.Combine(root, oneCell));
        else if (!merge) context.LockRoot(root);
        context.Services.AddSingleton<ILoggerProvider>(_ => new Logging.JsonLinesLoggerProvider(
            Path.Combine(root, "logs", $"{DateTime.UtcNow:yyyyMMdd-HHmmss}-study-{Environment.ProcessId}.jsonl")));
        context.AddCommand(async (sp, cancellationToken) =>
        {
            var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("forgetless");
            var runner = new StudyRunner(config, logger) { RunElsewhere = CellProcess.Starter(cli.Arguments) };
            if (oneCell is not null) return await RunOneCell(runner, oneCell, cancellationToken);
            if (merge)
            {
                string target = output is not null ? Path.GetFullPath(output) : runner.ReportDirectory;
                var merged = runner.Report(dirs, verify: true);
                merged.WriteAll(target);
                logger.LogInformation("study merge: {Cells} cells from {Dirs} → {Report}", merged.Cells.Count, dirs.Count, target);
                return ExitCodes.Ok;
            }
            var cells = shard is { } s ? StudyCells.Shard(runner.Cells, s.Index, s.Count) : runner.Cells;
            try
            {
                await runner.RunAsync(cells, cancellationToken);
            }
            catch (CellFailedException failed)
            {
                logger.Log(failed.ExitCode == ExitCodes.Cancelled ? LogLevel.Warning : LogLevel.Error, "{Message}", failed.Message);
                return failed.ExitCode;
            }
            if (shard is { } part)
            {
                logger.LogInformation("study: shard {Index}/{Count} done ({Cells} cells under {Root}); merge the shards with `forgetless study merge DIR...`",
                    part.Index, part.Count, cells.Count, runner.Root);
                return ExitCodes.Ok;
            }
            var report = runner.Report([runner.Root], verify: false);
            report.WriteAll(runner.ReportDirectory);
            logger.LogInformation("study: {Recommendation}", report.Recommendation());
            logger.LogInformation("study: report in {Report}", runner.ReportDirectory);
            return ExitCodes.Ok;
        });
    }

    /// <summary>
    /// <c>--cell NAME</c>: the one cell, in this process — the process the study started for it, so that the peak
    /// resident set after each training stage is the cell's own and is recorded (<see cref="CellMemory"/>).
    /// </summary>
    private static async Task<int> RunOneCell(StudyRunner runner, string name, CancellationToken cancellationToken)
    {
        var cell = runner.Cells.FirstOrDefault(c => c.Name == name)
                   ?? throw new UsageException($"study: --cell {name}: the study has no such cell; it has {string.Join(", ", runner.Cells.Select(c => c.Name))}");
        var stages = runner.CellStages(cell, Path.Combine(runner.Root, cell.Name));
        await runner.RunHereAsync(cell, stages, recordPeakMemory: true, cancellationToken);
        return ExitCodes.Ok;
    }

    /// <summary>The pipeline file, with the study file (--study) layered over it and the --set overrides over both.</summary>
    private static PipelineConfig StudyConfig(VerbContext context)
    {
        if (context.Cli.Option("study") is not { } file) return context.Config;
        return context.Config.WithFile(file).With(context.Cli.Options("set"), "--set");
    }
}
