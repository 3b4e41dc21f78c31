using Forgetless.Runs;
using Forgetless.Stages.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.Verbs;

/// <summary>
/// `forgetless STAGE [--force]`: brings the stage up to date, first rerunning any upstream stage
/// that is not (like `dvc repro`). Each stage runs as its own hosted service, one after another.
/// </summary>
public static class StageVerbs
{
    public static IEnumerable<Verb> All() => StageRegistry.All.Select(entry => new Verb(
        entry.Name,
        $"forgetless {entry.Name} [--force] [--wait] [--config FILE] [--set {entry.Name}.KEY=VALUE]...",
        entry.Summary,
        context => Register(context, entry.Name)));

    private static void Register(VerbContext context, string target)
    {
        bool force = context.Cli.Flag("force");
        context.AddRunStore(writes: true);
        var stages = context.Stages();
        if (stages.All(s => s.Name != target))
            throw new Configuration.ConfigException($"stage '{target}' is turned off in {Path.GetFileName(context.Config.FilePath)}");
        context.Services.AddSingleton<IReadOnlyList<IStage>>(stages);
        int targetIndex = stages.ToList().FindIndex(s => s.Name == target);
        Diagnostics.DiagnosticsFile.Current?.WatchStages(context.Config.ResolvePath(context.Run.Root), stages.Take(targetIndex + 1).Select(s => s.Name).ToList());
        context.Services.AddSingleton(sp =>
        {
            var plan = PipelineStatus.Plan(sp.GetRequiredService<RunStore>(), stages, target);
            return new StageSequence(plan.Select(s => s.Name).ToList(), sp.GetRequiredService<IHostApplicationLifetime>(), sp.GetRequiredService<ExitCode>());
        });
        foreach (var stage in stages.Take(targetIndex + 1))
        {
            var current = stage;
            context.Services.AddSingleton<IHostedService>(sp =>
            {
                var sequence = sp.GetRequiredService<StageSequence>();
                return sequence.Includes(current.Name)
                    ? ActivatorUtilities.CreateInstance<StageService>(sp, current, force && current.Name == target)
                    : new NoWork();
            });
        }
    }

    /// <summary>Placeholder for a stage that is up to date and not needed in this invocation.</summary>
    private sealed class NoWork : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
