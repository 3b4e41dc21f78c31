using Forgetless.Runs;

namespace Forgetless.Stages.Diagnostics;

/// <summary>
/// The codes of forgetless's diagnostics, grouped by the exit code they come with. Stable: CI rules and MSBuild
/// <c>WarningsAsErrors</c>/<c>NoWarn</c> lists refer to them. docs/use-in-your-repository.md lists them.
/// </summary>
public static class DiagnosticCodes
{
    /// <summary>The summary line (info): what ran, what was up to date, the exit code.</summary>
    public const string Summary = "FL0000";

    /// <summary>A release gate failed (exit 4); one per failed gate, at the gate in the pipeline file.</summary>
    public const string GateFailed = "FL1001";

    /// <summary>The pipeline file: an unknown key, a bad value, a missing file named by a key (exit 2).</summary>
    public const string Configuration = "FL2001";

    /// <summary>The command line: an unknown verb or option, a missing argument (exit 2).</summary>
    public const string Usage = "FL2002";

    /// <summary>Input data not as expected: a bad row, a bad field, at the file and line (exit 1).</summary>
    public const string Data = "FL3001";

    /// <summary>A file or folder that is missing or unreadable (exit 1).</summary>
    public const string MissingInput = "FL3002";

    /// <summary>Any other problem with the user's inputs: a model folder, an adapter that does not fit (exit 1).</summary>
    public const string Input = "FL3003";

    /// <summary><c>status --check</c>: a stage is not up to date (exit 3).</summary>
    public const string Stale = "FL4001";

    /// <summary>An unexpected failure inside forgetless (exit 1); --verbose shows its stack.</summary>
    public const string Internal = "FL5001";

    /// <summary>Stopped by Ctrl+C or SIGTERM (exit 130); nothing half-written was published.</summary>
    public const string Cancelled = "FL6001";

    /// <summary>A warning a stage logged (a regularizer that can never apply, an empty validation split, ...).</summary>
    public const string Warning = "FL8001";

    /// <summary>The code that stands for an exit code when nothing more specific was reported.</summary>
    public static string ForExitCode(int exitCode) => exitCode switch
    {
        ExitCodes.GateFailed => GateFailed,
        ExitCodes.Usage => Usage,
        ExitCodes.Stale => Stale,
        ExitCodes.Cancelled => Cancelled,
        _ => Internal,
    };
}
