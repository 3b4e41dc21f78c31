namespace Forgetless.Stages.Hosting;

/// <summary>The process exit code, set by whichever hosted service finishes the work.</summary>
public sealed class ExitCode
{
    public int Value { get; set; } = Runs.ExitCodes.Ok;
}
