using System.Globalization;
using Forgetless.Continual;
using Forgetless.FineTuning;
using Forgetless.Runs;
using Forgetless.Stages.Cli;
using Forgetless.Stages.Verbs;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.Continual;

/// <summary>
/// `forgetless continual [--strategy NAME]...`: learns the <c>continual.tasks</c> sequence with every configured
/// strategy (or the named ones), prints each strategy's accuracy matrix with ACC, BWT, FWT and forgetting, and writes
/// summary.json, report.md and report.html under RUN_ROOT/continual. `forgetless continual reptile` runs the
/// meta-learning experiment (<see cref="ReptileExperiment"/>).
/// </summary>
public static class ContinualVerb
{
    public static Verb Definition { get; } = new(
        "continual",
        "forgetless continual [--strategy NAME]... [--config FILE] [--set section.key=value]...  |  forgetless continual reptile  |  forgetless continual package [--strategy NAME]",
        "learn a sequence of tasks with each strategy: accuracy matrix, ACC, BWT, FWT, forgetting, router (docs/continual.md)",
        Register);

    private static void Register(VerbContext context)
    {
        var names = context.Cli.Options("strategy");
        bool reptile = context.Cli.Positional is ["reptile"], package = context.Cli.Positional is ["package"];
        if (context.Cli.Positional.Count > 0 && !reptile && !package)
            throw new UsageException($"continual: unexpected '{string.Join(" ", context.Cli.Positional)}'; expected nothing, 'reptile' or 'package'");
        if (package && names.Count > 1) throw new UsageException("continual package: name one strategy (--strategy NAME)");
        context.AddRunStore(writes: true);
        context.AddCommand(async (sp, ct) =>
        {
            var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("forgetless");
            var options = context.Config.Section<ContinualOptions>("continual");
            if (options.Tasks.Count == 0)
                throw new Configuration.ConfigException($"{Path.GetFileName(context.Config.FilePath)}: continual.tasks is empty; name the tasks of the sequence (name, train, suite)");
            var runner = new ContinualRunner(context.Config, options, logger, ToolVersion.Current);
            var pipeline = new StageContext(context.Config);
            if (reptile)
            {
                // The sequence's own settings (continual.settings) decide the method, as for every strategy's steps.
                var withSettings = context.Config.With(Configuration.PipelineConfig.ParseOverrides(options.Settings, "continual.settings"));
                var finetune = withSettings.Section<FineTuning.FineTuneOptions>("finetune");
                var placement = pipeline.Placement(logger);
                var setup = new ReptileSetup(() => StageContext.LoadWithTokenizer(pipeline.BaseModel, "the reptile experiment", placement), finetune, pipeline.Resolve,
                    pipeline.Resolve(finetune.Heldout), withSettings.Section<Data.PrepareOptions>("prepare").SeqLen, finetune.LearningRate, pipeline.Seed, placement);
                var reptileResult = await NativeHeap.RunInMainArena(() => new ReptileExperiment(setup, options, logger, Path.Combine(runner.Root, "reptile")).Run(ct));
                Console.Out.Write(reptileResult.Describe());
                OutputJson.Write(Path.Combine(runner.Root, "reptile.json"), reptileResult);
                return ExitCodes.Ok;
            }
            if (package)
            {
                var strategy = names.Count == 1
                    ? options.Strategies.FirstOrDefault(s => s.Name == names[0])
                      ?? throw new UsageException($"continual package: no strategy '{names[0]}'; configured: {string.Join(", ", options.Strategies.Select(s => s.Name))}")
                    : options.Strategies.FirstOrDefault(s => s.Isolation == Isolation.PerTask)
                      ?? throw new UsageException("continual package: no strategy with isolation perTask is configured; name one with --strategy");
                try
                {
                    await new ContinualPackage(context.Config, options, runner, logger, ToolVersion.Current).BuildAsync(strategy, ct);
                    return ExitCodes.Ok;
                }
                catch (GateRefusedException e)
                {
                    logger.LogError("{Message}", e.Message);
                    return ExitCodes.GateFailed;
                }
            }
            var chosen = names.Count == 0 ? options.Strategies
                : names.Select(n => options.Strategies.FirstOrDefault(s => s.Name == n)
                    ?? throw new UsageException($"continual: no strategy '{n}'; configured: {string.Join(", ", options.Strategies.Select(s => s.Name))}")).ToList();
            if (chosen.Count == 0) throw new Configuration.ConfigException("continual.strategies: is empty; configure at least one strategy");

            var baseline = await runner.BaseAsync(ct);
            var summaries = new List<StrategySummary>();
            var verdicts = new List<ContinualGateVerdict>();
            foreach (var strategy in chosen)
            {
                var run = await runner.RunAsync(strategy, baseline, ct);
                verdicts.AddRange(options.Gates.Where(g => g.Strategy == strategy.Name)
                    .Select(g => ContinualGates.Judge(g, run.Scores, pipeline.Seed, options.BootstrapResamples)));
                RouterResult? router = strategy.Isolation == Isolation.PerTask
                    ? await new TaskIsolation(runner, options, pipeline, logger, ToolVersion.Current).EvaluateAsync(run, ct) : null;
                var summary = ContinualReport.Summarize(run, router, pipeline.Seed, options.BootstrapResamples);
                summaries.Add(summary);
                logger.LogInformation("continual {Strategy}: ACC {Acc:F3}, BWT {Bwt:F3}, FWT {Fwt:F3}, forgetting {Forgetting:F3}",
                    strategy.Name, summary.Metrics.Acc, summary.Metrics.Bwt, summary.Metrics.Fwt, summary.Metrics.Forgetting);
            }
            var tasks = options.Tasks;
            var result = new ContinualSummary(tasks.Select(t => t.Name).ToList(), tasks.Select(t => t.Metric).ToList(),
                tasks.Select(t => Math.Round(baseline.Suites[t.Name].Metrics[t.Metric], 6)).ToArray(),
                ContinualReport.OldSuites(baseline, tasks.Select(t => t.Name).ToList()), summaries, verdicts);
            ContinualReport.WriteAll(result, runner.Root);
            Console.Out.Write(ContinualReport.Markdown(result));
            logger.LogInformation("continual: report in {Folder}", runner.Root);
            foreach (var skipped in options.Gates.Where(g => chosen.All(s => s.Name != g.Strategy)))
                logger.LogWarning("continual gate '{Gate}' not judged: strategy '{Strategy}' was not run", skipped.DisplayName, skipped.Strategy);
            foreach (var failed in verdicts.Where(v => !v.Passed)) logger.LogError("continual gate '{Gate}' failed: {Message}", failed.Name, failed.Message);
            return verdicts.All(v => v.Passed) ? ExitCodes.Ok : ExitCodes.GateFailed;
        });
    }
}
