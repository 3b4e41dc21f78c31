using Forgetless.Runs;
using Forgetless.Stages.Cli;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.Verbs;

/// <summary>`forgetless clean [STAGE...]`: removes stage outputs and resumable state (all stages when none named).</summary>
public static class CleanVerb
{
    public static Verb Definition { get; } = new(
        "clean",
        "forgetless clean [STAGE...] [--wait] [--config FILE]",
        "remove the outputs and resumable state of the named stages (all when none named)",
        Register);

    private static void Register(VerbContext context)
    {
        context.AddRunStore(writes: true);
        var named = context.Cli.Positional;
        context.AddCommand((sp, _) =>
        {
            var store = sp.GetRequiredService<RunStore>();
            var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("forgetless");
            var known = StageRegistry.All.Select(e => e.Name).ToList();
            foreach (var name in named.Where(n => !known.Contains(n)))
                throw new UsageException($"clean: unknown stage '{name}'; stages: {string.Join(", ", known)}");
            foreach (var stage in named.Count > 0 ? named : known)
            {
                store.Clean(stage);
                logger.LogInformation("{Stage}: cleaned", stage);
            }
            return Task.FromResult(ExitCodes.Ok);
        });
    }
}
