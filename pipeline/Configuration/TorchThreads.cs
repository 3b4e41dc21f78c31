using System.Globalization;
using System.Runtime.InteropServices;

namespace Forgetless.Configuration;

/// <summary>
/// libtorch's threads, made to behave on a machine shared with other work (CI runners, laptops, other pipelines).
/// <list type="bullet">
/// <item>OpenMP threads wait passively (<c>OMP_WAIT_POLICY=PASSIVE</c>) when other work keeps a core busy: libgomp's
/// default spins for ~300,000 iterations at every barrier, so when a competitor has taken one core the thread that got
/// there first burns its time slice waiting for the one that is descheduled — measured: scoring 3.9× slower beside one
/// busy process, 1.4× with passive waiting.</item>
/// <item>On idle cores they spin briefly (<c>GOMP_SPINCOUNT</c>=<see cref="IdleSpinCount"/>, some microseconds) before
/// they sleep: waking a sleeping thread at each of the thousands of parallel regions of a step costs time alone
/// (measured alternately against passive waiting: Evaluate 41 → 38 s with the base cached, 75.5 → 68 s cold; the base
/// full step 0.42 → 0.34 s; docs/benchmarks/cpu-before-after.md). Whether the cores are
/// idle is sampled once, as the process starts (<see cref="CpuIdle"/>), and each forgetless process decides for itself:
/// what is set here goes to the C library's environment only, not to child processes.</item>
/// <item>libgomp reads its environment once, when libtorch loads it, so this must be in the process environment (the
/// C library's, not only .NET's copy) before anything touches TorchSharp: <see cref="PrepareEnvironment"/> is the first
/// thing the executable does.</item>
/// <item>Intra-op threads default to the cores this process may use (<see cref="CpuBudget"/>: affinity and cgroup
/// quota), not the machine's core count.</item>
/// <item>The inter-op pool (libtorch's <c>at::launch</c>, which nothing here uses) gets one thread instead of one per core.</item>
/// </list>
/// A variable the user set is left alone; with either OpenMP variable set, the wait is the user's choice entirely.
/// </summary>
public static class TorchThreads
{
    public const string WaitPolicyVariable = "OMP_WAIT_POLICY";
    public const string NumThreadsVariable = "OMP_NUM_THREADS";
    public const string SpinCountVariable = "GOMP_SPINCOUNT";

    /// <summary>Spins at a barrier before sleeping, on idle cores: tens of microseconds (libgomp counts ~100,000 per millisecond).</summary>
    public const int IdleSpinCount = 3000;

    private static readonly Lock Gate = new();
    private static bool interopSized;

    /// <summary>What <see cref="PrepareEnvironment"/> found and did.</summary>
    /// <param name="InTime">False when the OpenMP runtime was already loaded: then nothing set here takes effect in this process.</param>
    /// <param name="SpinCount">GOMP_SPINCOUNT as libgomp will read it; null: libgomp's default for the wait policy.</param>
    /// <param name="OthersBusyCores">Cores other processes kept busy when the process started (null: not sampled).</param>
    public sealed record Prepared(bool InTime, string WaitPolicy, string NumThreads, string? SpinCount, double? OthersBusyCores)
    {
        public override string ToString() => string.Create(CultureInfo.InvariantCulture,
            $"OMP_WAIT_POLICY={WaitPolicy}, GOMP_SPINCOUNT={SpinCount ?? "(libgomp's default)"}{(OthersBusyCores is { } b ? $" ({b:F1} cores busy with other work at start)" : "")}");
    }

    /// <summary>What this process's <see cref="PrepareEnvironment"/> did; null when it was not called (a host such as a test runner).</summary>
    public static Prepared? Current { get; private set; }

    /// <summary>
    /// Sets the OpenMP wait (passive; a brief spin when the cores are idle, see the class remarks) unless the user set
    /// <c>OMP_WAIT_POLICY</c> or <c>GOMP_SPINCOUNT</c>, and <c>OMP_NUM_THREADS=</c>(the CPU budget) unless set. Call
    /// before the first use of TorchSharp. The thread count is inherited by child processes; the wait is not (each
    /// process samples its own cores).
    /// </summary>
    public static Prepared PrepareEnvironment()
    {
        bool inTime = !OpenMpLoaded();
        var threads = SetIfUnset(NumThreadsVariable, CpuBudget.OfThisProcess().ToString(CultureInfo.InvariantCulture));
        string? userPolicy = Given(WaitPolicyVariable), userSpin = Given(SpinCountVariable);
        Prepared prepared;
        if (userPolicy is not null || userSpin is not null)
        {
            prepared = new Prepared(inTime, userPolicy ?? "(unset)", threads, userSpin, null);
        }
        else
        {
            var busy = CpuIdle.OthersBusyCores(TimeSpan.FromMilliseconds(100));
            int spin = SpinCountFor(busy, Environment.ProcessorCount, int.Parse(threads, CultureInfo.InvariantCulture));
            SetNative(WaitPolicyVariable, "PASSIVE");
            SetNative(SpinCountVariable, spin.ToString(CultureInfo.InvariantCulture));
            prepared = new Prepared(inTime, "PASSIVE", threads, spin.ToString(CultureInfo.InvariantCulture), busy);
        }
        return Current = prepared;
    }

    /// <summary>
    /// <see cref="IdleSpinCount"/> when the cores this process's threads would spin on are free — the other processes'
    /// busy cores leave at least <paramref name="threads"/> − ½ of the <paramref name="processors"/> — else 0 (passive).
    /// Unknown load: passive.
    /// </summary>
    public static int SpinCountFor(double? othersBusyCores, int processors, int threads) =>
        othersBusyCores is { } busy && processors - busy >= threads - 0.5 ? IdleSpinCount : 0;

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

    private static string? Given(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : null;

    private static string SetIfUnset(string name, string value)
    {
        if (Given(name) is { } existing) return existing;
        SetNative(name, value);
        // The managed copy is what child processes inherit.
        Environment.SetEnvironmentVariable(name, value);
        return value;
    }

    /// <summary>
    /// Sets a variable in the C library's environment, where libgomp reads it (getenv). .NET keeps its own copy of the
    /// environment on Unix, which native code does not see and which child processes are started with.
    /// </summary>
    private static void SetNative(string name, string value)
    {
        if (!OperatingSystem.IsWindows() && NativeEnvironment.setenv(name, value, 1) != 0)
            throw new InvalidOperationException($"setenv({name}) failed with errno {Marshal.GetLastPInvokeError()}");
    }

    private static class NativeEnvironment
    {
        [DllImport("libc", SetLastError = true)]
        public static extern int setenv(string name, string value, int overwrite);
    }
}
