using System.Diagnostics;
using Forgetless.Runs;
using Forgetless.Stages.Hosting;
using Forgetless.Study;

namespace Forgetless.Stages.Study;

/// <summary>
/// Runs a study cell as <c>forgetless study ... --cell NAME</c> in a child process: the study's own command line with
/// the cell named, so the child builds the very configuration the study checked. Its memory is its own — the reason a
/// cell runs apart: a process's peak resident set cannot be taken back, and what earlier cells freed stays resident in
/// the allocator's and the runtime's heaps. The child shares the console (its progress shows as it runs); Ctrl+C
/// reaches it with the study, and a study cancelled any other way asks it to stop the same way.
/// </summary>
public static class CellProcess
{
    /// <summary>Options of the study's command line that the cell's process must not get (it runs no shard and writes no diagnostics file).</summary>
    private static readonly string[] NotForwarded = ["shard", "diagnostics", "cell"];

    public static Func<StudyCell, CancellationToken, Task> Starter(IReadOnlyList<string> studyArguments) => (cell, ct) => RunAsync(cell, studyArguments, ct);

    private static async Task RunAsync(StudyCell cell, IReadOnlyList<string> studyArguments, CancellationToken cancellationToken)
    {
        using var child = Process.Start(SelfProcess.StartInfo([.. Forwarded(studyArguments), "--cell", cell.Name], redirect: false))
                          ?? throw new InvalidOperationException($"study: could not start the process of cell '{cell.Name}'");
        try
        {
            await child.WaitForExitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            await SelfProcess.StopAsync(child, TimeSpan.FromMinutes(2)); // time to checkpoint, as the host allows itself
            throw;
        }
        // Stopped (130: the cell saved its checkpoint), failed or killed: the study ends with the cell's exit code.
        if (child.ExitCode != ExitCodes.Ok) throw new CellFailedException(cell.Name, child.ExitCode);
    }

    /// <summary>The study's arguments without the options in <see cref="NotForwarded"/> (as <c>--name value</c> or <c>--name=value</c>).</summary>
    public static IReadOnlyList<string> Forwarded(IReadOnlyList<string> arguments)
    {
        var kept = new List<string>();
        for (int i = 0; i < arguments.Count; i++)
        {
            string arg = arguments[i];
            string name = arg.StartsWith("--", StringComparison.Ordinal) ? arg[2..].Split('=')[0] : "";
            if (!NotForwarded.Contains(name))
            {
                kept.Add(arg);
                continue;
            }
            if (!arg.Contains('=') && i + 1 < arguments.Count && !arguments[i + 1].StartsWith("--", StringComparison.Ordinal)) i++;
        }
        return kept;
    }
}

/// <summary>A cell's process ended with an error; it has said why on the console, and the study ends with its exit code.</summary>
public sealed class CellFailedException(string cell, int exitCode)
    : Exception($"study: cell '{cell}' {(exitCode == ExitCodes.Cancelled ? "was stopped" : "failed")} (exit {exitCode}); rerun the study to resume it")
{
    public int ExitCode { get; } = exitCode;
}
