using Forgetless.Runs;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.Verbs;

/// <summary>
/// `forgetless status [--check]`: each stage as up to date, stale (with why) or never run.
/// With --check it exits non-zero when anything is not up to date — a CI gate like `dvc status -q`.
/// </summary>
public static class StatusVerb
{
    public static Verb Definition { get; } = new(
        "status",
        "forgetless status [--check] [--config FILE]",
        "show which stages are up to date, stale (and why) or never run",
        Register);

    private static void Register(VerbContext context)
    {
        bool check = context.Cli.Flag("check");
        context.AddRunStore(writes: false);
        context.AddCommand((sp, _) =>
        {
            var stages = context.Stages();
            var statuses = PipelineStatus.Of(sp.GetRequiredService<RunStore>(), stages);
            foreach (var status in statuses)
            {
                // The upstream stages this stage reads (e.g. evaluate after distill, or after finetune when distill is off).
                var declared = new StageInputs();
                stages.First(s => s.Name == status.Stage).DeclareInputs(declared);
                var upstream = declared.Entries.Where(e => e.Kind == StageInputKind.Upstream).Select(e => e.Source).ToList();
                string after = upstream.Count > 0 ? $"  (after {string.Join(", ", upstream)})" : "";
                Console.Out.WriteLine($"{status.Stage,-10} {Label(status.State),-10}{after}");
                if (status.State == StageState.Stale)
                    foreach (var reason in status.Reasons) Console.Out.WriteLine($"{"",-10}   - {reason}");
            }
            if (statuses.Count == 0) Console.Out.WriteLine("(no stages configured)");
            bool allUpToDate = statuses.All(s => s.IsUpToDate);
            return Task.FromResult(check && !allUpToDate ? ExitCodes.Stale : ExitCodes.Ok);
        });
    }

    private static string Label(StageState state) => state switch
    {
        StageState.UpToDate => "up to date",
        StageState.Stale => "stale",
        _ => "never run",
    };
}
