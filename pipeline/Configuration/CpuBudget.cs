using System.Globalization;

namespace Forgetless.Configuration;

/// <summary>
/// How many cores this process may actually use: the CPUs of its affinity mask, capped by the CPU quota of its
/// cgroup (a container limited to 2 CPUs on a 64-core host may use 2). libtorch's own default is the core count
/// its OpenMP runtime sees through the affinity mask alone, so under a quota it starts too many threads, and
/// threads that wait on each other at every parallel region stall whenever the quota throttles one of them.
/// </summary>
public static class CpuBudget
{
    /// <summary>The budget of this process on this machine (Linux: affinity and cgroup v1/v2; elsewhere the processor count).</summary>
    public static int OfThisProcess()
    {
        if (!OperatingSystem.IsLinux()) return Math.Max(1, Environment.ProcessorCount);
        int? affinity = TryRead("/proc/self/status") is { } status ? AffinityCount(status) : null;
        double? quota = CgroupQuota(TryRead("/proc/self/cgroup"), path => TryRead(Path.Combine("/sys/fs/cgroup", path.TrimStart('/'))));
        return Combine(affinity ?? Environment.ProcessorCount, quota);
    }

    /// <summary>
    /// The budget from the affinity count and a quota in CPUs (null: no quota). A fractional quota rounds down
    /// (at least 1): with 1.5 CPUs, two threads that meet at every parallel region would both wait whenever the
    /// quota runs out for one of them, which costs more than the half core left unused.
    /// </summary>
    public static int Combine(int affinityCount, double? quotaCpus)
    {
        int budget = Math.Max(1, affinityCount);
        if (quotaCpus is { } q && q > 0) budget = Math.Min(budget, Math.Max(1, (int)Math.Floor(q + 1e-9)));
        return budget;
    }

    /// <summary>The number of CPUs in the <c>Cpus_allowed_list</c> line of <c>/proc/self/status</c> ("0-3,8,10-11"); null if absent.</summary>
    public static int? AffinityCount(string procStatus)
    {
        foreach (var line in procStatus.Split('\n'))
        {
            if (!line.StartsWith("Cpus_allowed_list:", StringComparison.Ordinal)) continue;
            int count = 0;
            foreach (var part in line["Cpus_allowed_list:".Length..].Trim().Split(',', StringSplitOptions.RemoveEmptyEntries))
            {
                var range = part.Split('-');
                if (!int.TryParse(range[0], NumberStyles.None, CultureInfo.InvariantCulture, out int first)) return null;
                int last = first;
                if (range.Length == 2 && !int.TryParse(range[1], NumberStyles.None, CultureInfo.InvariantCulture, out last)) return null;
                count += last - first + 1;
            }
            return count > 0 ? count : null;
        }
        return null;
    }

    /// <summary>
    /// The tightest CPU quota (in CPUs) on the way from this process's cgroup up to the root, from the text of
    /// <c>/proc/self/cgroup</c> and a reader of files under <c>/sys/fs/cgroup</c>: cgroup v2's <c>cpu.max</c>
    /// ("max 100000" or "200000 100000"), or cgroup v1's <c>cpu.cfs_quota_us</c> / <c>cpu.cfs_period_us</c> (-1: none).
    /// Null when no level sets one.
    /// </summary>
    public static double? CgroupQuota(string? procCgroup, Func<string, string?> readCgroupFile)
    {
        if (procCgroup is null) return null;
        double? tightest = null;
        void Take(double? q)
        {
            if (q is > 0) tightest = tightest is { } t ? Math.Min(t, q.Value) : q;
        }
        foreach (var line in procCgroup.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            // hierarchy-id:controllers:path; cgroup v2 is "0::/path", v1 lists its controllers ("4:cpu,cpuacct:/path").
            var fields = line.Split(':', 3);
            if (fields.Length != 3) continue;
            bool v2 = fields[0] == "0" && fields[1].Length == 0;
            bool v1Cpu = fields[1].Split(',').Contains("cpu");
            if (!v2 && !v1Cpu) continue;
            foreach (var dir in SelfAndParents(fields[2]))
            {
                if (v2)
                {
                    Take(ParseCpuMax(readCgroupFile(Path.Combine(dir, "cpu.max"))));
                }
                else
                {
                    // v1 mounts the controller as cpu,cpuacct (with a "cpu" link to it on most systems).
                    foreach (var root in new[] { "cpu", "cpu,cpuacct" })
                    {
                        var quota = readCgroupFile(Path.Combine(root, dir.TrimStart('/'), "cpu.cfs_quota_us"));
                        var period = readCgroupFile(Path.Combine(root, dir.TrimStart('/'), "cpu.cfs_period_us"));
                        if (quota is null || period is null) continue;
                        Take(ParseV1(quota, period));
                        break;
                    }
                }
            }
        }
        return tightest;
    }

    /// <summary>cgroup v2 <c>cpu.max</c>: "QUOTA PERIOD" in microseconds, or "max PERIOD" for no limit.</summary>
    public static double? ParseCpuMax(string? text)
    {
        var parts = text?.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts is not { Length: 2 } || parts[0] == "max") return null;
        return double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var quota)
               && double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var period) && period > 0 && quota > 0
            ? quota / period
            : null;
    }

    private static double? ParseV1(string quotaText, string periodText) =>
        double.TryParse(quotaText.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var quota)
        && double.TryParse(periodText.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var period) && quota > 0 && period > 0
            ? quota / period
            : null;

    /// <summary>"/a/b" → "/a/b", "/a", "/" (a parent's limit bounds its children).</summary>
    private static IEnumerable<string> SelfAndParents(string path)
    {
        var current = "/" + path.Trim().Trim('/');
        while (true)
        {
            yield return current;
            if (current == "/") yield break;
            int slash = current.LastIndexOf('/');
            current = slash <= 0 ? "/" : current[..slash];
        }
    }

    private static string? TryRead(string path)
    {
        try
        {
            return File.Exists(path) ? File.ReadAllText(path) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
