using Microsoft.Extensions.Hosting;

namespace Forgetless.Stages.Hosting;

/// <summary>
/// Lets the stage services of one invocation run one after another in pipeline order, stops the
/// remaining ones after a failure, and stops the host when the last one is done.
/// </summary>
public sealed class StageSequence(IReadOnlyList<string> order, IHostApplicationLifetime lifetime, ExitCode exitCode)
{
    private readonly Dictionary<string, TaskCompletionSource<bool>> finished =
        order.ToDictionary(s => s, _ => new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously));

    public bool Includes(string stage) => finished.ContainsKey(stage);

    /// <summary>Waits until every earlier stage finished; false when one of them failed.</summary>
    public async Task<bool> WaitTurnAsync(string stage, CancellationToken cancellationToken)
    {
        foreach (var earlier in order.TakeWhile(s => s != stage))
            if (!await finished[earlier].Task.WaitAsync(cancellationToken))
                return false;
        return true;
    }

    public void Finish(string stage, int code)
    {
        if (code != Runs.ExitCodes.Ok && exitCode.Value == Runs.ExitCodes.Ok) exitCode.Value = code;
        finished[stage].TrySetResult(code == Runs.ExitCodes.Ok);
        if (code != Runs.ExitCodes.Ok || stage == order[^1])
        {
            foreach (var rest in finished.Values) rest.TrySetResult(false);
            lifetime.StopApplication();
        }
    }
}
