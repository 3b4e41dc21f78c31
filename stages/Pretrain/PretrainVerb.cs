using Forgetless.Pretraining;
using Forgetless.Runs;
using Forgetless.Stages.Verbs;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.Pretrain;

/// <summary>
/// `forgetless pretrain [--force]`: trains the embedded base model from the general text (about an
/// hour on 2 cores), resumable after Ctrl+C or a kill, then installs it where `pretrain.output`
/// says (data/models/forgetless-base by default).
/// </summary>
public static class PretrainVerb
{
    public static Verb Definition { get; } = new(
        "pretrain",
        "forgetless pretrain [--force] [--wait] [--set pretrain.KEY=VALUE]...",
        "pretrain the embedded base model on the general text and install it under data/models",
        Register);

    private static void Register(VerbContext context)
    {
        bool force = context.Cli.Flag("force");
        context.AddRunStore(writes: true);
        var options = context.Config.Section<PretrainOptions>("pretrain");
        var stage = new PretrainStage(context.Config, options, context.Run);
        string target = context.Config.ResolvePath(options.Output);
        context.AddCommand(async (sp, ct) =>
        {
            var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("forgetless");
            var store = sp.GetRequiredService<RunStore>();
            var result = await store.RunAsync(stage, force, ct);
            FolderInstall.Replace(store.StageDirectory(stage.Name), target, exclude: StageManifest.FileName);
            logger.LogInformation("pretrain: {State}; model installed in {Target}", result.Skipped ? "up to date" : "trained", target);
            return ExitCodes.Ok;
        });
    }
}
