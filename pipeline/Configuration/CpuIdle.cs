using System.Globalization;

namespace Forgetless.Configuration;

/// <summary>
/// How many cores other processes keep busy right now: the machine's busy time (<c>/proc/stat</c>) over a short window,
/// less this process's own (<c>/proc/self/stat</c>). Linux only; null elsewhere or when the files cannot be read.
/// </summary>
public static class CpuIdle
{
    /// <summary>Busy cores of everything but this process over <paramref name="window"/> (0.1 s is 20 clock ticks on 2 cores).</summary>
    public static double? OthersBusyCores(TimeSpan window)
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            var (busy0, own0) = (MachineBusyTicks(File.ReadAllText("/proc/stat")), OwnTicks(File.ReadAllText("/proc/self/stat")));
            var clock = System.Diagnostics.Stopwatch.StartNew();
            Thread.Sleep(window);
            var (busy1, own1) = (MachineBusyTicks(File.ReadAllText("/proc/stat")), OwnTicks(File.ReadAllText("/proc/self/stat")));
            // USER_HZ is 100 on every Linux ABI .NET runs on.
            return Math.Max(0, (busy1 - busy0) - (own1 - own0)) / 100.0 / clock.Elapsed.TotalSeconds;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or OverflowException)
        {
            return null; // a /proc this code does not know: decide as if the load were unknown (passive)
        }
    }

    /// <summary>Ticks the machine spent busy: the first line of /proc/stat, every field but idle and iowait (guest time is already in user).</summary>
    public static long MachineBusyTicks(string procStat)
    {
        var line = procStat.Split('\n', 2)[0];
        var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 5 || fields[0] != "cpu") throw new FormatException($"/proc/stat: expected a 'cpu' line first, got '{line}'");
        long busy = 0;
        // user nice system idle iowait irq softirq steal [guest guest_nice]
        for (int i = 1; i < Math.Min(fields.Length, 9); i++)
            if (i is not (4 or 5)) busy += long.Parse(fields[i], CultureInfo.InvariantCulture);
        return busy;
    }

    /// <summary>utime + stime of a /proc/PID/stat line (fields 14 and 15; the command name may hold spaces, so count after its ')').</summary>
    public static long OwnTicks(string procSelfStat)
    {
        int close = procSelfStat.LastIndexOf(')');
        var after = close < 0 || close + 2 > procSelfStat.Length ? [] : procSelfStat[(close + 2)..].Split(' ');
        // after[0] is field 3 (state): utime is field 14, stime field 15.
        if (after.Length < 13) throw new FormatException($"/proc/self/stat: expected at least 15 fields, got '{procSelfStat}'");
        return long.Parse(after[11], CultureInfo.InvariantCulture) + long.Parse(after[12], CultureInfo.InvariantCulture);
    }
}
