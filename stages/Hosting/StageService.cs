using Forgetless.Runs;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.Hosting;

/// <summary>
/// One pipeline stage as a hosted service: waits for its turn, runs the stage through the run
/// store (skipped when up to date), and reports the outcome as an exit code. Ctrl+C or SIGTERM
/// cancel the stage; whatever it had not completed is never published.
/// </summary>
public sealed class StageService(IStage stage, bool force, RunStore store, StageSequence sequence, ILogger<StageService> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        int code;
        try
        {
            if (!await sequence.WaitTurnAsync(stage.Name, stoppingToken)) return;
            var result = await store.RunAsync(stage, force, stoppingToken);
            code = ExitCodes.Ok;
            if (result.Manifest.Failure is { } failure)
            {
                logger.LogError("{Stage}: {Failure}", stage.Name, failure);
                code = ExitCodes.GateFailed;
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            logger.LogWarning("{Stage}: cancelled; no output was published (resumable state is kept)", stage.Name);
            code = ExitCodes.Cancelled;
        }
        catch (Exception e)
        {
            code = Failures.Report(e, logger, stage.Name);
        }
        sequence.Finish(stage.Name, code);
    }
}
