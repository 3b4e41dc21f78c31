namespace Forgetless.Runs;

/// <summary>
/// One step of the pipeline (prepare, finetune, distill, evaluate, package). A stage declares
/// everything it reads; the run store fingerprints those inputs, skips the stage when nothing
/// changed, and otherwise runs it into a temporary folder that is moved into place only when
/// <see cref="RunAsync"/> returns.
/// </summary>
public interface IStage
{
    /// <summary>Lower-case stage name; also the name of its output folder under the run root.</summary>
    string Name { get; }

    /// <summary>Everything the stage reads: files, folders, config values, upstream stages.</summary>
    void DeclareInputs(StageInputs inputs);

    /// <summary>
    /// Does the work. Writes only under <see cref="StageRun.OutputDirectory"/> (final outputs) and
    /// <see cref="StageRun.WorkDirectory"/> (resumable scratch such as checkpoints).
    /// Throws <see cref="OperationCanceledException"/> when cancelled; any exception leaves no output.
    /// </summary>
    Task<StageOutcome> RunAsync(StageRun run, CancellationToken cancellationToken);
}

/// <summary>What a completed stage reports: metrics for the manifest and a verdict for the exit code.</summary>
public sealed record StageOutcome
{
    public static StageOutcome Done(IReadOnlyDictionary<string, object?>? metrics = null) =>
        new() { Metrics = metrics ?? new Dictionary<string, object?>() };

    /// <summary>Key numbers recorded in the stage manifest (losses, counts, timings).</summary>
    public IReadOnlyDictionary<string, object?> Metrics { get; init; } = new Dictionary<string, object?>();

    /// <summary>
    /// Non-null when the stage completed its outputs but judged the result unacceptable (a failed
    /// release gate). The outputs are kept; the process exits with <see cref="ExitCodes.GateFailed"/>.
    /// </summary>
    public string? Failure { get; init; }
}

/// <summary>Process exit codes of the forgetless executable; documented in the README.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    public const int Error = 1;
    public const int Usage = 2;
    public const int Stale = 3;
    public const int GateFailed = 4;
    public const int Cancelled = 130;
}
