using System.Diagnostics;
using System.Text;

namespace Forgetless.Tests.Tool;

/// <summary>
/// Runs a program (dotnet, the installed tool) as a user would, in a clean environment: no MSBuild variables of the
/// test host, no build servers or reused nodes that would outlive the test, plain output. Returns the exit code, the
/// output (stdout and stderr interleaved) and the wall time.
/// </summary>
internal static class DotnetCommand
{
    /// <summary>The dotnet host running the tests when they run under it, else dotnet from PATH.</summary>
    public static string Dotnet { get; } =
        Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet" ? Environment.ProcessPath! : "dotnet";

    public sealed record Result(int ExitCode, string Output, double Seconds);

    public static Result Run(string program, IEnumerable<string> arguments, string workingDirectory,
        IReadOnlyDictionary<string, string>? environment = null, int timeoutSeconds = 900)
    {
        var start = new ProcessStartInfo(program)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in arguments) start.ArgumentList.Add(a);
        foreach (string key in start.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList())
            start.Environment.Remove(key);
        start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        start.Environment["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0";
        start.Environment["UseSharedCompilation"] = "false";
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["NO_COLOR"] = "1";
        start.Environment["OMP_WAIT_POLICY"] = "PASSIVE";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) start.Environment[key] = value;

        var output = new StringBuilder();
        var clock = Stopwatch.StartNew();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(TimeSpan.FromSeconds(timeoutSeconds)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', arguments)} ran past {timeoutSeconds} s:\n{output}");
        }
        process.WaitForExit(); // drains the output events
        lock (output) return new Result(process.ExitCode, output.ToString(), clock.Elapsed.TotalSeconds);
    }
}
