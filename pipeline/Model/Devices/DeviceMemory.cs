using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Model.Devices;

/// <summary>How much memory a device offers a run: the CPU's available memory (cgroup limit included), a GPU's total.</summary>
public static class DeviceMemory
{
    /// <summary>Bytes the run may use on <paramref name="device"/>, or null when that cannot be found out.</summary>
    public static long? Available(Device device, ILogger? log = null) => device.type switch
    {
        DeviceType.CPU => CpuAvailable(),
        DeviceType.CUDA => GpuTotal(device.index < 0 ? 0 : device.index, log),
        _ => null,
    };

    /// <summary>MemAvailable from /proc/meminfo, capped by the cgroup's memory.max; null off Linux.</summary>
    public static long? CpuAvailable()
    {
        long? available = null;
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                    available = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
            var cgroup = "/sys/fs/cgroup/memory.max";
            if (File.Exists(cgroup) && long.TryParse(File.ReadAllText(cgroup).Trim(), CultureInfo.InvariantCulture, out var max))
                available = available is { } a ? Math.Min(a, max) : max;
        }
        catch (IOException)
        {
        }
        return available;
    }

    /// <summary>The GPU's total memory from nvidia-smi (libtorch's C++ API that TorchSharp wraps has no memory query).</summary>
    public static long? GpuTotal(int index, ILogger? log = null)
    {
        var text = NvidiaSmi($"--query-gpu=memory.total --format=csv,noheader,nounits -i {index}");
        if (text is not null && long.TryParse(text.Trim(), CultureInfo.InvariantCulture, out var mib)) return mib << 20;
        log?.LogWarning("the GPU's memory could not be read (nvidia-smi); set run.maxMemoryGb to check the estimate against it");
        return null;
    }

    /// <summary>nvidia-smi's output for <paramref name="arguments"/>, or null when it is not there.</summary>
    public static string? NvidiaSmi(string arguments)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo("nvidia-smi", arguments) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false });
            if (process is null) return null;
            var output = process.StandardOutput.ReadToEnd();
            process.WaitForExit(10_000);
            return process.ExitCode == 0 ? output : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}
