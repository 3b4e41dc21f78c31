using System.Diagnostics;

namespace Forgetless.Tests;

/// <summary>
/// Runs the built <c>forgetless.dll</c> (copied next to the tests, since the stages project is referenced) as a real
/// process: what a user or a CI job sees — exit code, stdout, stderr — and nothing shared with the test process.
/// </summary>
internal static class ForgetlessProcess
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public string Output => Stdout + Stderr;

        /// <summary>A .NET stack trace line ("   at Namespace.Type.Method(...)").</summary>
        public bool HasStackTrace => Output.Split('\n').Any(l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal) && l.Contains('('));

        public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
    }

    public static string Dll => Path.Combine(AppContext.BaseDirectory, "forgetless.dll");

    /// <param name="environment">Variables to set; a null value removes the variable from the child's environment.</param>
    public static Process Start(string workingDirectory, IEnumerable<string> args, IReadOnlyDictionary<string, string?>? environment = null)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory,
        };
        start.ArgumentList.Add(Dll);
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["NO_COLOR"] = "1";
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("FORGETLESS_", StringComparison.OrdinalIgnoreCase)).ToList())
            start.Environment.Remove(name);
        foreach (var (k, v) in environment ?? new Dictionary<string, string?>())
            if (v is null) start.Environment.Remove(k);
            else start.Environment[k] = v;
        return Process.Start(start)!;
    }

    public static async Task<Result> Finish(Process process, TimeSpan? timeout = null)
    {
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(3));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"forgetless did not finish in time:\n{await stdout}\n{await stderr}");
        }
        return new Result(process.ExitCode, await stdout, await stderr);
    }

    public static Task<Result> RunAsync(string workingDirectory, params string[] args) => Finish(Start(workingDirectory, args));

    public static Task<Result> RunAsync(string workingDirectory, IReadOnlyDictionary<string, string?> environment, params string[] args) =>
        Finish(Start(workingDirectory, args, environment));
}
