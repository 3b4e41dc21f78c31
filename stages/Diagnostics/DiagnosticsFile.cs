using Forgetless.Runs;

namespace Forgetless.Stages.Diagnostics;

/// <summary>
/// <c>forgetless VERB --diagnostics FILE</c>: every error and warning of the invocation as JSON lines, each with a
/// code (<see cref="DiagnosticCodes"/>) and the file, line and column it concerns, ending with a summary line
/// (exit code, stages that ran, stages already up to date). The Forgetless SDK turns these into MSBuild errors and
/// warnings; CI scripts can read them without scraping the log. The file is written once, atomically, when the
/// invocation ends, so a reader never sees half of it.
/// <para>
/// The file of the current invocation is ambient (<see cref="Current"/>, flowing with the async context) so the
/// places that already see every failure — <see cref="Hosting.Failures"/>, the verb set-up — can report to it
/// without being handed it.
/// </para>
/// </summary>
public sealed class DiagnosticsFile(string path)
{
    private static readonly AsyncLocal<DiagnosticsFile?> current = new();
    private readonly List<Diagnostic> diagnostics = [];
    private readonly Lock sync = new();
    private string? pipelineFile;
    private PipelineFileLocations? locations;
    private StageOutcomes? outcomes;
    private string? lastErrorMessage;

    /// <summary>The diagnostics file of the invocation running on this async flow; null without --diagnostics.</summary>
    public static DiagnosticsFile? Current
    {
        get => current.Value;
        set => current.Value = value;
    }

    public string FilePath { get; } = Path.GetFullPath(path);

    /// <summary>The pipeline file this invocation reads: configuration errors and gates are placed in it.</summary>
    public void UsePipelineFile(string file)
    {
        lock (sync)
        {
            string full = Path.GetFullPath(file);
            if (full == pipelineFile) return;
            pipelineFile = full;
            locations = null;
        }
    }

    private PipelineFileLocations? Locations()
    {
        lock (sync) return pipelineFile is null ? null : locations ??= PipelineFileLocations.Read(pipelineFile);
    }

    /// <summary>The stages this invocation may run (for the summary: which ran, which were up to date).</summary>
    public void WatchStages(string runRoot, IReadOnlyList<string> stages)
    {
        lock (sync) outcomes = new StageOutcomes(runRoot, stages);
    }

    public void Report(Exception e, string? what = null)
    {
        foreach (var d in FailureDiagnostics.Of(e, what, Locations())) Add(d);
    }

    /// <summary>A warning a stage logged; placed at the configuration key or section it names, if any.</summary>
    public void Warning(string message) =>
        Add(new Diagnostic(DiagnosticSeverity.Warning, DiagnosticCodes.Warning, message).At(Locations()?.Find(message)));

    /// <summary>An error that was only logged (no exception): its text stands in if no diagnostic explains the exit code.</summary>
    public void ErrorLogged(string message)
    {
        lock (sync) lastErrorMessage = message;
    }

    private void Add(Diagnostic diagnostic)
    {
        lock (sync) diagnostics.Add(diagnostic);
    }

    /// <summary>Completes the file for <paramref name="exitCode"/> and writes it.</summary>
    public void Finish(int exitCode)
    {
        var locations = Locations();
        StageOutcomes? watched;
        lock (sync) watched = outcomes;
        var (ran, upToDate) = watched?.Now() ?? ([], []);
        // The evaluate stage's results, when this invocation ran it or found it up to date.
        var evaluated = watched is not null && ran.Concat(upToDate).Contains("evaluate")
            ? EvaluateResults.Read(Path.Combine(watched.RunRoot, "evaluate"))
            : null;
        if (exitCode == ExitCodes.GateFailed && !HasError() && evaluated is not null)
            foreach (var d in evaluated.FailedGates(locations)) Add(d);
        // Every non-zero exit is explained by at least one error, if only by its exit code and the last error logged.
        if (exitCode != ExitCodes.Ok && !HasError())
            Add(new Diagnostic(DiagnosticSeverity.Error, DiagnosticCodes.ForExitCode(exitCode), lastErrorMessage ?? Fallback(exitCode))
                .At(exitCode == ExitCodes.GateFailed && locations is not null ? new SourceLocation(locations.File) : null));

        Add(new Diagnostic(DiagnosticSeverity.Info, DiagnosticCodes.Summary, Summary(exitCode, ran, upToDate, watched is not null))
        {
            ExitCode = exitCode,
            Ran = watched is null ? null : ran,
            UpToDate = watched is null ? null : upToDate,
            RunRoot = watched?.RunRoot,
            Adapter = evaluated?.Adapter,
            PipelineFile = locations?.File,
        });
        lock (sync) AtomicFile.WriteAllText(FilePath, string.Concat(diagnostics.Select(d => d.ToJsonLine() + "\n")));
    }

    private bool HasError()
    {
        lock (sync) return diagnostics.Any(d => d.Severity == DiagnosticSeverity.Error);
    }

    private static string Fallback(int exitCode) => exitCode switch
    {
        ExitCodes.GateFailed => "a release gate failed (see the evaluate report)",
        ExitCodes.Stale => "not every stage is up to date",
        ExitCodes.Cancelled => "cancelled; nothing half-written was published",
        _ => $"forgetless failed with exit code {exitCode}",
    };

    private static string Summary(int exitCode, IReadOnlyList<string> ran, IReadOnlyList<string> upToDate, bool stages)
    {
        if (exitCode != ExitCodes.Ok)
            return $"failed (exit code {exitCode})" + (stages && ran.Count > 0 ? $" after completing {string.Join(", ", ran)}" : "");
        if (!stages) return "done";
        if (ran.Count == 0) return upToDate.Count > 0 ? $"nothing to do: {string.Join(", ", upToDate)} up to date" : "nothing to do";
        return $"ran {string.Join(", ", ran)}" + (upToDate.Count > 0 ? $" ({string.Join(", ", upToDate)} up to date)" : "");
    }
}
