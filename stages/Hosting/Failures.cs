using Forgetless.Configuration;
using Forgetless.Runs;
using Forgetless.Stages.Cli;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.Hosting;

/// <summary>
/// Turns an exception into a one-line reason and an exit code: 2 for a mistake on the command line or in the
/// configuration, 1 for everything else (bad data, bad files, runtime errors). The message alone is printed; the
/// stack trace only with --verbose (the log level is Debug then), because a clear message needs none and an
/// unexpected error is reproduced with --verbose.
/// </summary>
public static class Failures
{
    public static int Report(Exception e, ILogger logger, string what)
    {
        Diagnostics.DiagnosticsFile.Current?.Report(e, what); // --diagnostics: the same failure with its code and location
        bool verbose = logger.IsEnabled(LogLevel.Debug);
        int code = ExitCodeOf(e);
        bool expected = e is UserInputException or UsageException or FileNotFoundException or DirectoryNotFoundException
            or UnauthorizedAccessException or InvalidDataException or IOException;
        string hint = expected || verbose ? "" : " (an unexpected error: run again with --verbose for the stack trace)";
        string separator = code == ExitCodes.Usage ? ":" : " failed:";
        if (verbose) logger.LogError(e, "{What}{Separator} {Message}{Hint}", what, separator, e.Message, hint);
        else logger.LogError("{What}{Separator} {Message}{Hint}", what, separator, e.Message, hint);
        return code;
    }

    public static int ExitCodeOf(Exception e) => e is UsageException or ConfigException ? ExitCodes.Usage : ExitCodes.Error;
}
