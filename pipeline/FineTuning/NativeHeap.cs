using System.Runtime.InteropServices;

namespace Forgetless.FineTuning;

/// <summary>
/// How glibc's allocator, which libtorch's CPU tensors come from, keeps or returns freed memory. Linux/glibc only;
/// elsewhere (and on musl, which has no <c>mallopt</c>) nothing happens.
/// <para>
/// By default glibc serves every block of 32 MiB or more (less, until its threshold has risen) with a fresh
/// <c>mmap</c> and unmaps it when it is freed, and it trims the top of its heap back to the OS. A training step makes
/// and frees the same large tensors every step — the base shape's logits, their log-softmax and their gradients are
/// exactly 32 MiB each — so every step faults all their pages in again and has the kernel zero them: 35,000 page
/// faults a step on the base shape's LoRA step, against 0–10,000 with freed blocks kept (<c>perf stat</c>; why it
/// varies: <see cref="UseOneArena"/>).
/// </para>
/// </summary>
public static class NativeHeap
{
    // mallopt parameters (malloc.h). Setting any of them also turns off glibc's dynamic threshold for good.
    private const int TrimThreshold = -1, MmapThreshold = -3, MmapMax = -4, ArenaMax = -8;

    // glibc's defaults for what a training loop changes, and the threshold its dynamic rule settles at on 64-bit.
    private const int DefaultMmapMax = 65536, SettledMmapThreshold = 32 << 20, SettledTrimThreshold = 2 * SettledMmapThreshold;

    private static readonly Lock Gate = new();
    private static bool returnFreedBlocks;
    private static int reusing;

    /// <summary>
    /// At most one arena for threads that allocate from now on (<c>M_ARENA_MAX</c> 1), as the first thing the process
    /// does. glibc otherwise gives each new thread an arena of its own, made of 64 MiB heaps that it unmaps as soon as
    /// they are empty, whatever <see cref="ReuseFreedBlocks"/> asks, so a training loop on a worker thread faults its
    /// large tensors in afresh at every step all the same. Threads the runtime started before Main keep their arenas,
    /// so a worker may still land in one of those: measured on the base LoRA step, 0 or ~10,000 faults a step from run
    /// to run (35,000 before). <c>MALLOC_ARENA_MAX=1</c> in the environment makes it 0 every time.
    /// </summary>
    public static void UseOneArena() => Set(ArenaMax, 1);

    /// <summary>
    /// Makes glibc hand every freed block of 128 KiB or more back to the OS, so that the resident set follows the live
    /// tensors (by default glibc raises its mmap threshold each time such a block is freed and keeps later ones in its
    /// heap, so a peak depends on the order of earlier allocations more than on what a method holds). For processes
    /// that measure memory; it costs large tensors their page faults at every allocation, so it must not be timed.
    /// <see cref="ReuseFreedBlocks"/> then does nothing in this process.
    /// </summary>
    public static void ReturnFreedBlocks()
    {
        lock (Gate)
        {
            returnFreedBlocks = true;
            Set(MmapMax, DefaultMmapMax);
            Set(MmapThreshold, 128 * 1024);
        }
    }

    /// <summary>
    /// For a loop that makes and frees the same tensors over and over (training steps): until disposed, freed blocks
    /// of any size stay in the heap for the next step instead of going back to the OS (no mmap, no trimming). On
    /// dispose the memory the loop freed goes back to the OS (<c>malloc_trim</c>) and large blocks are mapped again,
    /// at the threshold glibc's own rule settles at. Nested scopes keep the outermost's policy.
    /// </summary>
    public static IDisposable ReuseFreedBlocks()
    {
        lock (Gate)
        {
            if (returnFreedBlocks) return new Scope(counted: false);
            if (reusing++ == 0)
            {
                Set(MmapMax, 0);
                Set(TrimThreshold, int.MaxValue);
            }
            return new Scope(counted: true);
        }
    }

    private sealed class Scope(bool counted) : IDisposable
    {
        private bool disposed;

        public void Dispose()
        {
            lock (Gate)
            {
                if (disposed || !counted) return;
                disposed = true;
                if (--reusing > 0 || returnFreedBlocks) return;
                Set(MmapMax, DefaultMmapMax);
                Set(MmapThreshold, SettledMmapThreshold);
                Set(TrimThreshold, SettledTrimThreshold);
                Trim();
            }
        }
    }

    private static void Set(int parameter, int value) => OnGlibc(() => MallOpt(parameter, value));

    private static void Trim() => OnGlibc(() => MallocTrim(0));

    private static void OnGlibc(Action call)
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            call();
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // not glibc (e.g. musl): its allocator returns large blocks anyway
        }
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int MallOpt(int parameter, int value);

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);
}
