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

    /// <summary>
    /// Runs <paramref name="work"/> on a thread of its own that allocates from glibc's main arena, the one heap whose
    /// freed blocks <see cref="ReuseFreedBlocks"/> can keep (other arenas unmap an empty 64 MiB heap at once, so a loop
    /// there faults its large tensors in afresh at every step: measured on the default finetune stage, 52,000 page
    /// faults and 0.88 s a step on a pool thread against 1,400 and 0.51 s in the main arena). Which arena a new thread
    /// gets is glibc's choice (round robin over the arenas that exist, after <see cref="UseOneArena"/>), so threads are
    /// started until one allocates below the program break, where only the main arena's heap lies; the others wait
    /// and end once it is found. Elsewhere, or if none is found after a few tries, the work runs on the last thread
    /// started. The work runs inside <see cref="ReuseFreedBlocks"/>, since all of it makes and frees tensors batch after
    /// batch (a scoring batch alone: 0.59 s with its 64 MiB of logits mapped afresh each time), and inside
    /// <see cref="Model.TemporaryTensors.HeldDuring{T}"/>, so that no tensor it makes is finalized mid-call. Exceptions,
    /// cancellation included, reach the awaiter as they were thrown.
    /// </summary>
    public static Task<T> RunInMainArena<T>(Func<T> work)
    {
        var result = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var triedThreads = new ManualResetEventSlim(false); // not disposed: waiting threads may still be waking from it
        for (int attempt = 1; ; attempt++)
        {
            bool last = !IsGlibc.Value || attempt == MaxThreadsTried;
            var inMainArena = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            var thread = new Thread(() =>
            {
                bool found = last || AllocatesFromMainArena() == true;
                inMainArena.SetResult(found);
                if (!found)
                {
                    triedThreads.Wait(); // keep this thread's arena taken, so that the next thread is given another
                    return;
                }
                T value;
                try
                {
                    using (ReuseFreedBlocks()) value = Model.TemporaryTensors.HeldDuring(work);
                }
                catch (Exception e)
                {
                    result.SetException(e);
                    return;
                }
                result.SetResult(value);
            }) { IsBackground = true, Name = "forgetless compute" };
            thread.Start();
            if (inMainArena.Task.GetAwaiter().GetResult()) break;
        }
        triedThreads.Set();
        return result.Task;
    }

    private const int MaxThreadsTried = 32;

    private static readonly Lazy<bool> IsGlibc = new(() =>
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            return GlibcVersion() != 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false; // musl and others: no mallopt, no arenas to choose between, large blocks returned anyway
        }
    });

    /// <summary>
    /// Whether the calling thread's allocations come from the main arena: a 4 KiB block (too large for the per-thread
    /// cache, so it comes from the thread's arena) lies below the program break, in the heap only the main arena grows
    /// (other arenas live in mmap'd heaps above it). Null where that cannot be asked (not glibc).
    /// </summary>
    public static bool? AllocatesFromMainArena()
    {
        if (!IsGlibc.Value) return null;
        nint block = Malloc(4096);
        nint programBreak = Sbrk(0);
        Free(block);
        return block != 0 && programBreak != -1 && (nuint)block < (nuint)programBreak;
    }

    private static void Set(int parameter, int value)
    {
        if (IsGlibc.Value) MallOpt(parameter, value);
    }

    private static void Trim()
    {
        if (IsGlibc.Value) MallocTrim(0);
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int MallOpt(int parameter, int value);

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    [DllImport("libc", EntryPoint = "gnu_get_libc_version")]
    private static extern nint GlibcVersion();

    [DllImport("libc", EntryPoint = "malloc")]
    private static extern nint Malloc(nuint size);

    [DllImport("libc", EntryPoint = "free")]
    private static extern void Free(nint block);

    [DllImport("libc", EntryPoint = "sbrk")]
    private static extern nint Sbrk(nint increment);
}
