using Forgetless.Runs;
using Forgetless.Stages.Cli;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.Hosting;

/// <summary>
/// Turns an exception into a one-line reason and an exit code. Mistakes a user can make (bad
/// config, bad data, bad files) are reported by message alone; anything else also gets its stack.
/// </summary>
public static class Failures
{
    public static int Report(Exception e, ILogger logger, string what)
    {
        Diagnostics.DiagnosticsFile.Current?.Report(e, what); // --diagnostics: the same failure with its code and location
        switch (e)
        {
            case UsageException:
                logger.LogError("{What}: {Message}", what, e.Message);
                return ExitCodes.Usage;
            case UserInputException or FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException:
                logger.LogError("{What} failed: {Message}", what, e.Message);
                return ExitCodes.Error;
            default:
                logger.LogError(e, "{What} failed: {Message}", what, e.Message);
                return ExitCodes.Error;
        }
    }
}
