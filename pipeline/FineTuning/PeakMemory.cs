using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Forgetless.FineTuning;

/// <summary>
/// The process's peak resident set (VmHWM), and on Linux a way to restart it, so that a benchmark can tell the peak
/// of one phase (training) from the load before it (a model is f32 while it loads, whatever it is trained as).
/// </summary>
public static class PeakMemory
{
    /// <summary>
    /// Makes glibc hand every freed block of 128 KiB or more back to the OS, so that the resident set follows the live
    /// tensors. (By default glibc raises its mmap threshold each time such a block is freed and keeps later ones in its
    /// heap, so a peak depends on the order of earlier allocations more than on what a method holds.) Linux/glibc only;
    /// elsewhere nothing happens.
    /// </summary>
    public static void ReturnFreedBlocks()
    {
        const int MmapThreshold = -3; // M_MMAP_THRESHOLD; setting it also turns off the dynamic adjustment
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            MallOpt(MmapThreshold, 128 * 1024);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // not glibc (e.g. musl): its allocator returns large blocks anyway
        }
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int MallOpt(int parameter, int value);

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
