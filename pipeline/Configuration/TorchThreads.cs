using System.Globalization;
using System.Runtime.InteropServices;

namespace Forgetless.Configuration;

/// <summary>
/// libtorch's threads, made to behave on a machine shared with other work (CI runners, laptops, other pipelines).
/// <list type="bullet">
/// <item>OpenMP threads wait passively (<c>OMP_WAIT_POLICY=PASSIVE</c>): libgomp's default spins for ~300,000
/// iterations at every barrier, so when a competitor has taken one core the thread that got there first burns its
/// time slice waiting for the one that is descheduled — measured: scoring 3.9× slower beside one busy process,
/// 1.4× with passive waiting. libgomp reads its environment once, when libtorch loads it, so this must be in the
/// process environment (the C library's, not only .NET's copy) before anything touches TorchSharp:
/// <see cref="PrepareEnvironment"/> is the first thing the executable does.</item>
/// <item>Intra-op threads default to the cores this process may use (<see cref="CpuBudget"/>: affinity and cgroup
/// quota), not the machine's core count.</item>
/// <item>The inter-op pool (libtorch's <c>at::launch</c>, which nothing here uses) gets one thread instead of one per core.</item>
/// </list>
/// A variable the user set is left alone.
/// </summary>
public static class TorchThreads
{
    public const string WaitPolicyVariable = "OMP_WAIT_POLICY";
    public const string NumThreadsVariable = "OMP_NUM_THREADS";

    private static readonly Lock Gate = new();
    private static bool interopSized;

    /// <summary>What <see cref="PrepareEnvironment"/> found and did.</summary>
    /// <param name="InTime">False when the OpenMP runtime was already loaded: then nothing set here takes effect in this process.</param>
    public sealed record Prepared(bool InTime, string WaitPolicy, string NumThreads);

    /// <summary>
    /// Puts <c>OMP_WAIT_POLICY=PASSIVE</c> and <c>OMP_NUM_THREADS=</c>(the CPU budget) into the environment unless they are
    /// set already. Call before the first use of TorchSharp; child processes inherit the settings.
    /// </summary>
    public static Prepared PrepareEnvironment()
    {
        bool inTime = !OpenMpLoaded();
        var policy = SetIfUnset(WaitPolicyVariable, "PASSIVE");
        var threads = SetIfUnset(NumThreadsVariable, CpuBudget.OfThisProcess().ToString(CultureInfo.InvariantCulture));
        return new Prepared(inTime, policy, threads);
    }

    /// <summary>
    /// Sizes libtorch's pools for this invocation: <paramref name="configuredThreads"/> intra-op threads when positive
    /// (<c>run.threads</c>), else what <see cref="PrepareEnvironment"/> left in <c>OMP_NUM_THREADS</c> (the CPU budget
    /// unless the user set it); one inter-op thread.
    /// </summary>
    public static void Apply(int configuredThreads)
    {
        if (configuredThreads > 0) TorchSharp.torch.set_num_threads(configuredThreads);
        lock (Gate)
        {
            if (interopSized) return;
            interopSized = true;
            try
            {
                TorchSharp.torch.set_num_interop_threads(1);
            }
            catch (ExternalException)
            {
                // libtorch refuses once inter-op work has started (a host process that ran torch before, e.g. a test
                // runner); the pool then stays as it is, which costs nothing here since no inter-op work is submitted.
            }
        }
    }

    /// <summary>The intra-op threads libtorch uses when <c>run.threads</c> is 0 (default).</summary>
    public static int DefaultThreads =>
        int.TryParse(Environment.GetEnvironmentVariable(NumThreadsVariable), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
            ? n
            : CpuBudget.OfThisProcess();

    /// <summary>Whether an OpenMP runtime (libgomp, or Intel's libiomp) is mapped into this process already.</summary>
    public static bool OpenMpLoaded()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            foreach (var line in File.ReadLines("/proc/self/maps"))
                if (line.Contains("libgomp", StringComparison.Ordinal) || line.Contains("libiomp", StringComparison.Ordinal)) return true;
        }
        catch (IOException)
        {
        }
        return false;
    }

    private static string SetIfUnset(string name, string value)
    {
        if (Environment.GetEnvironmentVariable(name) is { Length: > 0 } existing) return existing;
        // .NET keeps its own copy of the environment on Unix: Environment.SetEnvironmentVariable alone would not be seen
        // by native code (libgomp calls getenv), so the C library's environment is set too. The managed copy is what
        // child processes inherit.
        if (!OperatingSystem.IsWindows() && NativeEnvironment.setenv(name, value, 1) != 0)
            throw new InvalidOperationException($"setenv({name}) failed with errno {Marshal.GetLastPInvokeError()}");
        Environment.SetEnvironmentVariable(name, value);
        return value;
    }

    private static class NativeEnvironment
    {
        [DllImport("libc", SetLastError = true)]
        public static extern int setenv(string name, string value, int overwrite);
    }
}
