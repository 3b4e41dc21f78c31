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
        "forgetless study [merge DIR...] [--study FILE] [--shard i/n] [--output DIR] [--config FILE] [--set KEY=VALUE]...",
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

        var study = config.Section<StudyOptions>("study");
        StudyCells.Expand(study); // no cells, or a name twice: exit 2 before anything starts
        string root = config.ResolvePath(study.Root);
        if (!merge) context.LockRoot(root);
        context.Services.AddSingleton<ILoggerProvider>(_ => new Logging.JsonLinesLoggerProvider(
            Path.Combine(root, "logs", $"{DateTime.UtcNow:yyyyMMdd-HHmmss}-study-{Environment.ProcessId}.jsonl")));
        context.AddCommand(async (sp, cancellationToken) =>
        {
            var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("forgetless");
            var runner = new StudyRunner(config, logger);
            if (merge)
            {
                string target = output is not null ? Path.GetFullPath(output) : runner.ReportDirectory;
                var merged = runner.Report(dirs, verify: true);
                merged.WriteAll(target);
                logger.LogInformation("study merge: {Cells} cells from {Dirs} → {Report}", merged.Cells.Count, dirs.Count, target);
                return ExitCodes.Ok;
            }
            var cells = shard is { } s ? StudyCells.Shard(runner.Cells, s.Index, s.Count) : runner.Cells;
            await runner.RunAsync(cells, cancellationToken);
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

    /// <summary>The pipeline file, with the study file (--study) layered over it and the --set overrides over both.</summary>
    private static PipelineConfig StudyConfig(VerbContext context)
    {
        if (context.Cli.Option("study") is not { } file) return context.Config;
        return context.Config.WithFile(file).With(context.Cli.Options("set"), "--set");
    }
}
