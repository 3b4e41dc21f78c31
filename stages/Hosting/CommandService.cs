using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.Hosting;

/// <summary>A verb that is not a pipeline stage (status, clean, score, ...) run as a hosted service.</summary>
public sealed class CommandService(
    string name,
    Func<IServiceProvider, CancellationToken, Task<int>> command,
    IServiceProvider services,
    IHostApplicationLifetime lifetime,
    ExitCode exitCode,
    ILogger<CommandService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        try
        {
            exitCode.Value = await command(services, stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            logger.LogWarning("{Verb}: cancelled", name);
            exitCode.Value = Runs.ExitCodes.Cancelled;
        }
        catch (Exception e)
        {
            exitCode.Value = Failures.Report(e, logger, name);
        }
        lifetime.StopApplication();
    }
}
