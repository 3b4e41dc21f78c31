using Forgetless.FineTuning;

namespace Forgetless.Tests.FineTuning;

/// <summary>
/// Cancels a training run as soon as its first checkpoint exists, the way Ctrl+C would land mid-run. A watcher races
/// the run, and on a loaded machine the run can finish before the watcher is scheduled; such a run proves nothing, so
/// it is tried again in a fresh run root (three times at most).
/// </summary>
internal static class FirstCheckpointCancellation
{
    /// <returns>The run root (under <paramref name="root"/>) of the run that was cancelled.</returns>
    public static async Task<string> RunAsync(string root, string name, string stage, Func<CancellationToken, string, Task> run)
    {
        for (int attempt = 1; ; attempt++)
        {
            string runRoot = attempt == 1 ? name : $"{name}-{attempt}";
            using var cts = new CancellationTokenSource();
            var work = Path.Combine(root, runRoot, ".work");
            var watcher = Task.Run(async () =>
            {
                while (!cts.IsCancellationRequested)
                {
                    if (Directory.Exists(work) && Directory.EnumerateDirectories(work, stage + "-*").Any(d => File.Exists(Path.Combine(d, Trainer.CheckpointFile))))
                    {
                        cts.Cancel();
                        break;
                    }
                    await Task.Delay(2);
                }
            });
            try
            {
                await run(cts.Token, runRoot);
            }
            catch (OperationCanceledException)
            {
                await watcher;
                return runRoot;
            }
            await cts.CancelAsync();
            await watcher;
            if (attempt == 3) throw new Xunit.Sdk.XunitException($"the {stage} run finished three times before its first checkpoint could be cancelled");
        }
    }
}
