using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Forgetless.Stages.Hosting;

/// <summary>This program started again as a child process (a benchmark case, a study cell), so that its memory is its own.</summary>
public static class SelfProcess
{
    /// <summary>
    /// How to start forgetless with <paramref name="arguments"/>: under <c>dotnet forgetless.dll</c> the host needs the
    /// assembly; the <c>forgetless</c> apphost is the program itself.
    /// </summary>
    public static ProcessStartInfo StartInfo(IEnumerable<string> arguments, bool redirect)
    {
        var host = Environment.ProcessPath ?? "dotnet";
        var start = new ProcessStartInfo(host) { RedirectStandardOutput = redirect, RedirectStandardError = redirect };
        if (Path.GetFileNameWithoutExtension(host) == "dotnet") start.ArgumentList.Add(typeof(SelfProcess).Assembly.Location);
        foreach (var a in arguments) start.ArgumentList.Add(a);
        return start;
    }

    /// <summary>
    /// Asks a child to stop as Ctrl+C would (SIGTERM: it checkpoints and exits), then waits up to <paramref name="grace"/>
    /// before killing it. Where there are no signals, it is killed at once.
    /// </summary>
    public static async Task StopAsync(Process child, TimeSpan grace)
    {
        if (child.HasExited) return;
        if (!OperatingSystem.IsWindows() && Kill(child.Id, SigTerm) == 0)
        {
            using var timeout = new CancellationTokenSource(grace);
            try
            {
                await child.WaitForExitAsync(timeout.Token);
                return;
            }
            catch (OperationCanceledException)
            {
                // did not stop in time
            }
        }
        child.Kill(entireProcessTree: true);
        await child.WaitForExitAsync(CancellationToken.None);
    }

    private const int SigTerm = 15;

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
