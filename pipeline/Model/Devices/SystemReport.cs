using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Model.Devices;

/// <summary>
/// What this machine offers a run, as `forgetless doctor` prints it: the libtorch build and backend, the devices it
/// finds (CUDA, cuDNN and the driver when there is a GPU), threads, memory, and whether TorchSharp's native library
/// was patched to load against an older libstdc++ (build/TorchSharpNative.targets).
/// </summary>
public static class SystemReport
{
    /// <summary>The one symbol version TorchSharp 0.107's native library needs that Debian 12's libstdc++ lacks.</summary>
    public const string NewestGlibcxx = "GLIBCXX_3.4.32";

    /// <summary>The report's lines, "name: value", in the order they are printed.</summary>
    public static IReadOnlyList<(string Name, string Value)> Lines()
    {
        var lines = new List<(string, string)>();
        string native = NativeFolder();
        bool cudaBuild = File.Exists(Path.Combine(native, "libtorch_cuda.so")) || File.Exists(Path.Combine(native, "torch_cuda.dll"));
        lines.Add(("torchsharp", typeof(torch).Assembly.GetName().Version?.ToString() ?? "unknown"));
        lines.Add(("libtorch", $"{torch.__version__} ({(cudaBuild ? "CUDA build" : "CPU-only build")}) in {native}"));
        bool cuda = torch.cuda.is_available();
        lines.Add(("cuda", cuda ? $"available, {torch.cuda.device_count()} device(s)" : cudaBuild ? "not available (no driver or no GPU found)" : "not in this build (build with -p:TorchBackend=cuda; docs/gpu.md)"));
        if (cuda)
        {
            lines.Add(("cudnn", torch.cuda.is_cudnn_available() ? "available" + CudnnVersion(native) : "not available"));
            if (DeviceMemory.NvidiaSmi("--query-gpu=index,name,memory.total,driver_version --format=csv,noheader") is { } gpus)
                foreach (var gpu in gpus.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                    lines.Add(("gpu", gpu));
            if (DeviceMemory.NvidiaSmi("") is { } banner && banner.IndexOf("CUDA Version:", StringComparison.Ordinal) is var at and >= 0)
                lines.Add(("cuda driver api", banner[(at + "CUDA Version:".Length)..].Split('|', 2)[0].Trim()));
        }
        lines.Add(("threads", string.Create(CultureInfo.InvariantCulture,
            $"{torch.get_num_threads()} torch threads, {Environment.ProcessorCount} processors, {Configuration.TorchThreads.Current?.ToString() ?? $"OMP_WAIT_POLICY={Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") ?? "(unset: spinning threads)"}"}")));
        lines.Add(("memory", string.Create(CultureInfo.InvariantCulture,
            $"{Gb(MemTotal())} total, {Gb(DeviceMemory.CpuAvailable())} available to this process (cgroup limit included)")));
        lines.Add(("process", string.Create(CultureInfo.InvariantCulture, $"{Gb(Environment.WorkingSet)} resident after loading libtorch")));
        lines.Add(("native patch", NativePatch(native)));
        return lines;
    }

    private static string Gb(long? bytes) => bytes is { } b ? string.Create(CultureInfo.InvariantCulture, $"{b / (double)(1L << 30):F2} GB") : "unknown";

    /// <summary>Where the libtorch libraries are: runtimes/RID/native under the app (a build), or the app folder (a tool).</summary>
    public static string NativeFolder()
    {
        string app = AppContext.BaseDirectory;
        string rid = Path.Combine(app, "runtimes", System.Runtime.InteropServices.RuntimeInformation.RuntimeIdentifier, "native");
        return Directory.Exists(rid) ? rid : app;
    }

    /// <summary>
    /// Whether libLibTorchSharp.so loads here: its GLIBCXX_3.4.32 requirement marked weak (patched), or the system's
    /// libstdc++ new enough that no patch is needed.
    /// </summary>
    public static string NativePatch(string nativeFolder)
    {
        var library = Path.Combine(nativeFolder, "libLibTorchSharp.so");
        if (!File.Exists(library)) return "not applicable (no libLibTorchSharp.so; not Linux?)";
        var needs = ElfVersionNeeds.WeakByName(File.ReadAllBytes(library));
        if (!needs.TryGetValue(NewestGlibcxx, out var weak)) return $"not needed (the library does not ask for {NewestGlibcxx})";
        if (weak) return $"applied ({NewestGlibcxx} marked weak in {library})";
        return $"not applied ({library} requires {NewestGlibcxx}; it loads only where libstdc++ has it)";
    }

    private static string CudnnVersion(string native)
    {
        var file = Directory.EnumerateFiles(native, "libcudnn.so.*").Select(Path.GetFileName).OrderBy(n => n, StringComparer.Ordinal).LastOrDefault();
        return file is null ? "" : $" ({file})";
    }

    private static long? MemTotal()
    {
        try
        {
            var line = File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
            return line is null ? null : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException)
        {
            return null;
        }
    }
}
