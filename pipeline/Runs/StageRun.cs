using Microsoft.Extensions.Logging;

namespace Forgetless.Runs;

/// <summary>What the run store hands a stage while it runs.</summary>
public sealed class StageRun
{
    public required string StageName { get; init; }

    /// <summary>Temporary folder for the final outputs; moved into place when the stage completes.</summary>
    public required string OutputDirectory { get; init; }

    /// <summary>
    /// Scratch that survives an interrupted run (checkpoints). Keyed by the stage's fingerprint, so a
    /// rerun with the same inputs finds it and can resume; removed when the stage completes.
    /// </summary>
    public required string WorkDirectory { get; init; }

    /// <summary>SHA-256 of the declared inputs; also a good seed for anything cached.</summary>
    public required string Fingerprint { get; init; }

    public required ILogger Logger { get; init; }

    /// <summary>Maps an upstream stage name to its completed output folder (set by the run store).</summary>
    public required Func<string, string> ResolveUpstream { get; init; }

    /// <summary>The completed output folder of an upstream stage declared with <see cref="StageInputs.Upstream"/>.</summary>
    public string UpstreamOutput(string stageName) => ResolveUpstream(stageName);
}
