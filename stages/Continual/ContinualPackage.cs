using System.Text.Json;
using System.Text.Json.Nodes;
using Forgetless.Continual;
using Forgetless.Packaging;
using Forgetless.Runs;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.Continual;

/// <summary>
/// <c>forgetless continual package [--strategy NAME]</c>: brings a task-isolation strategy's run up to date (cached),
/// judges its continual gates on its scores and packages its adapters as one adapter-set package
/// (<see cref="AdapterSetPackager"/>) in RUN_ROOT/continual/STRATEGY/package — or refuses, exit 4, when a gate failed.
/// </summary>
public sealed class ContinualPackage(Configuration.PipelineConfig config, ContinualOptions options, ContinualRunner runner, ILogger logger, string toolVersion)
{
    private readonly StageContext pipeline = new(config);

    public string OutputDirectory(ContinualStrategy strategy) => Path.Combine(runner.Root, strategy.Name, "package");

    public async Task<PackageResult> BuildAsync(ContinualStrategy strategy, CancellationToken cancellationToken)
    {
        if (strategy.Isolation != Isolation.PerTask)
            throw new Cli.UsageException($"continual package: strategy '{strategy.Name}' shares one adapter across tasks; package its last adapter with the release pipeline " +
                                         "(evaluate.adapter / package.adapter), or name a strategy with isolation perTask");
        var baseline = await runner.BaseAsync(cancellationToken);
        var run = await runner.RunAsync(strategy, baseline, cancellationToken);
        var router = await new TaskIsolation(runner, options, pipeline, logger, toolVersion).EvaluateAsync(run, cancellationToken);
        var gates = options.Gates.Where(g => g.Strategy == strategy.Name)
            .Select(g => ContinualGates.Judge(g, run.Scores, pipeline.Seed, options.BootstrapResamples)).ToList();
        if (AdapterSetPackager.GateRefusal(gates, "the continual run") is { } refusal) throw new GateRefusedException(refusal);

        var package = config.Section<PackageOptions>("package");
        package.Name = $"{package.Name}-{strategy.Name}";
        var tasks = options.Tasks.Select(t => t.Name).ToList();
        var summary = ContinualReport.Summarize(run, router, pipeline.Seed, options.BootstrapResamples);
        var continual = JsonSerializer.SerializeToNode(new
        {
            Tasks = tasks,
            Metrics = options.Tasks.Select(t => t.Metric).ToList(),
            Base = options.Tasks.Select(t => Math.Round(baseline.Suites[t.Name].Metrics[t.Metric], 6)).ToArray(),
            Strategy = summary,
        }, OutputJson.Options)!.AsObject();
        var judged = run.Scores.Matrix().R;

        var packager = new AdapterSetPackager
        {
            Options = package,
            Strategy = strategy.Name,
            Adapters = tasks.Zip(run.Adapters).ToList(),
            Router = Path.Combine(runner.Root, strategy.Name, "adapters", Peft.AdapterSet.RouterFile),
            BaseModel = pipeline.BaseModel,
            Continual = continual,
            Gates = gates,
            Config = StageRegistry.ConfigJson(config),
            SourceRevision = SourceRevision.Of(pipeline.BaseDirectory),
            Tools = Provenance.ToolVersions(toolVersion),
            KeyDirectory = pipeline.BaseDirectory,
            Epoch = DeterministicArchive.Epoch(),
            // The copies must be the adapters the gates judged: the run, brought up to date again, scores the same and
            // its adapters hold the copied bytes.
            ConfirmScored = copies =>
            {
                var again = runner.RunAsync(strategy, baseline, cancellationToken).GetAwaiter().GetResult();
                if (!SameMatrix(again.Scores.Matrix().R, judged))
                    return "refusing to package: the strategy's scores changed while packaging (an adapter or suite was modified); run it again";
                foreach (var (task, folder) in tasks.Zip(again.Adapters))
                    if (FolderDigest.Of(folder).Digest != copies[task].Digest)
                        return $"refusing to package: {folder} changed while it was copied; run it again";
                return null;
            },
        };
        string output = OutputDirectory(strategy);
        Directory.CreateDirectory(output);
        var result = packager.Build(output, cancellationToken);
        logger.LogInformation("continual package: {Archive} ({Files} files: {Count} adapters of {Type}, router, card, provenance)",
            result.Archive, result.Files, tasks.Count, result.PeftType);
        return result;
    }

    private static bool SameMatrix(double[,] a, double[,] b) =>
        a.GetLength(0) == b.GetLength(0) && Enumerable.Range(0, a.GetLength(0)).All(i => Enumerable.Range(0, a.GetLength(1)).All(j => a[i, j].Equals(b[i, j])));
}

/// <summary>A package refused because a gate failed: exit code 4, as a failed release gate.</summary>
public sealed class GateRefusedException(string message) : UserInputException(message);
