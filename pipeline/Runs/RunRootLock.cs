using System.Diagnostics;
using System.Globalization;

namespace Forgetless.Runs;

/// <summary>
/// One writer per run root. Every verb that writes under the run root holds an operating-system lock on
/// <c>ROOT/.lock</c> (an exclusive <c>flock</c> on Linux and macOS, a sharing lock on Windows) for as long as it runs;
/// the system releases it when the process ends, however it ends (kill -9 included), so a crashed writer never leaves a
/// stale lock behind. A second writer either stops with a message that names the holder, or waits for it. Readers
/// (<c>status</c>, <c>verify</c>) take no lock: the run store publishes each stage with a rename, so they see a
/// completed stage or none.
/// </summary>
public sealed class RunRootLock : IDisposable
{
    public const string FileName = ".lock";
    /// <summary>Who holds the lock, for the message a second writer prints (the lock file itself cannot be read while held).</summary>
    public const string HolderFileName = ".lock.holder";

    private readonly FileStream handle;

    private RunRootLock(string root, FileStream handle)
    {
        Root = root;
        this.handle = handle;
    }

    public string Root { get; }

    /// <summary>Takes the lock, or returns null when another process (or another handle in this one) holds it.</summary>
    /// <param name="holder">What the holder is doing, e.g. <c>forgetless finetune</c>; shown to a writer that has to wait.</param>
    public static RunRootLock? TryAcquire(string root, string holder)
    {
        root = Path.GetFullPath(root);
        Directory.CreateDirectory(root);
        FileStream handle;
        try
        {
            handle = new FileStream(Path.Combine(root, FileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e) when (IsHeldElsewhere(e))
        {
            return null;
        }
        AtomicFile.WriteAllText(Path.Combine(root, HolderFileName), string.Create(CultureInfo.InvariantCulture,
            $"process {Environment.ProcessId} ({holder}) since {DateTime.UtcNow:yyyy-MM-dd HH:mm:ss} UTC\n"));
        return new RunRootLock(root, handle);
    }

    /// <summary>
    /// Takes the lock. When it is held: with <paramref name="wait"/>, reports once through <paramref name="report"/> and
    /// polls until it is free (or <paramref name="cancellationToken"/> fires); without, throws <see cref="RunRootBusyException"/>.
    /// </summary>
    public static async Task<RunRootLock> AcquireAsync(string root, string holder, bool wait, Action<string> report, CancellationToken cancellationToken)
    {
        root = Path.GetFullPath(root);
        var taken = TryAcquire(root, holder);
        if (taken is not null) return taken;
        if (!wait)
            throw new RunRootBusyException($"run root {root} is in use by another writer — {Holder(root)}; " +
                                           "pass --wait to wait until it is free, or give this run another run.root");
        report($"run root {root} is in use by another writer — {Holder(root)}; waiting until it is free (Ctrl+C to give up)");
        var clock = Stopwatch.StartNew();
        while ((taken = TryAcquire(root, holder)) is null)
            await Task.Delay(TimeSpan.FromMilliseconds(250), cancellationToken);
        report($"run root {root} is free after {clock.Elapsed.TotalSeconds:0.0} s; continuing");
        return taken;
    }

    /// <summary>What the current holder wrote about itself (best effort: it may be finishing right now).</summary>
    public static string Holder(string root)
    {
        try
        {
            return File.ReadAllText(Path.Combine(root, HolderFileName)).Trim();
        }
        catch (IOException)
        {
            return "holder unknown";
        }
    }

    /// <summary>.NET reports a held lock as a sharing violation (Win32 error 32, also on Unix where it maps EWOULDBLOCK).</summary>
    private static bool IsHeldElsewhere(IOException e) => (e.HResult & 0xFFFF) == 32 || e.Message.Contains("being used by another process", StringComparison.Ordinal);

    public void Dispose() => handle.Dispose();
}

/// <summary>Another process is writing to the run root and the caller chose not to wait (exit 1: a runtime condition).</summary>
public sealed class RunRootBusyException(string message) : UserInputException(message);
