using System.Diagnostics;

namespace Forgetless.FineTuning;

/// <summary>
/// The process's peak resident set (VmHWM), and on Linux a way to restart it, so that a benchmark can tell the peak
/// of one phase (training) from the load before it (a model is f32 while it loads, whatever it is trained as).
/// </summary>
public static class PeakMemory
{
    /// <summary>Peak resident set since start or the last <see cref="Restart"/>, in bytes.</summary>
    public static long PeakRssBytes() => Process.GetCurrentProcess().PeakWorkingSet64;

    /// <summary>
    /// Frees what the .NET heap holds for nothing (e.g. the byte arrays a checkpoint was read through), so that a phase's
    /// peak is not charged for garbage the GC happened not to collect yet.
    /// </summary>
    public static void CollectManagedGarbage()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        // Aggressive: also hand the freed regions back to the OS (a plain collection keeps them committed for reuse).
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
    }

    /// <summary>
    /// Sets the peak to the current resident set (writes 5 to /proc/self/clear_refs, Linux ≥ 4.0). False where that is
    /// not possible; the peak then still counts from the start of the process.
    /// </summary>
    public static bool Restart()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
