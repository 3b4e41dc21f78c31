using System.Text.Json;
using System.Text.Json.Nodes;
using Forgetless.Runs;

namespace Forgetless.Study;

/// <summary>
/// A cell's peak memory, ROOT/CELL/peak-memory.json: for each training stage (finetune, distill) that ran in the cell's
/// own process (<c>forgetless study --cell NAME</c>, which the study starts per cell), that process's peak resident set
/// (VmHWM) when the stage completed — so it counts the cell's prepare and training and nothing of any other cell. Each
/// entry names the stage run it belongs to (the manifest's fingerprint and start), so a stage rerun any other way
/// makes the number unknown instead of wrong. Machine-dependent: it goes to timings.json, never to study.json.
/// </summary>
public static class CellMemory
{
    public const string FileName = "peak-memory.json";
    public const string Schema = "forgetless.study-cell-memory/1";

    /// <summary>The stages whose peak is the cell's cost (evaluate's memory does not depend on the method).</summary>
    public static readonly string[] TrainingStages = ["finetune", "distill"];

    /// <summary>What the number is, for the report.</summary>
    public const string Meaning = "peak resident set (VmHWM) of the cell's own process through its training";

    /// <summary>The allocator setting the process ran with: glibc keeps freed blocks resident unless MALLOC_MMAP_THRESHOLD_ is set.</summary>
    public static string Allocator() =>
        Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") is { Length: > 0 } threshold
            ? "MALLOC_MMAP_THRESHOLD_=" + threshold
            : "default";

    /// <summary>
    /// This process's peak resident set: VmHWM from /proc/self/status on Linux, the peak working set on Windows, 0
    /// where the system keeps none (macOS reports no peak to .NET).
    /// </summary>
    public static long ProcessPeakBytes() =>
        Data.PrepareBenchmark.PeakRss() is > 0 and var vmHwm ? vmHwm
        : OperatingSystem.IsWindows() ? System.Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64 : 0;

    /// <summary>Records <paramref name="stage"/>'s completed run with the process's peak so far (<paramref name="peakBytes"/>, 0: unknown).</summary>
    public static void Record(string cellRoot, string stage, long peakBytes)
    {
        if (StageManifest.TryRead(Path.Combine(cellRoot, stage)) is not { } manifest) return;
        string path = Path.Combine(cellRoot, FileName);
        var stages = TryRead(path)?["stages"]?.AsObject().DeepClone().AsObject() ?? new JsonObject();
        stages[stage] = new JsonObject
        {
            ["fingerprint"] = manifest.Fingerprint,
            ["started"] = manifest.Started.ToString("O"),
            ["peak_rss_bytes"] = peakBytes > 0 ? peakBytes : null,
            ["allocator"] = Allocator(),
        };
        var file = new JsonObject { ["schema"] = Schema, ["measured"] = Meaning, ["stages"] = stages };
        AtomicFile.WriteAllText(path, file.ToJsonString(Indented) + "\n");
    }

    /// <summary>The cell's peak: the highest of its training stages' entries, or null with the reason it is not known.</summary>
    public static (long? Bytes, string? Allocator, string? Unknown) Read(string cellRoot)
    {
        var recorded = TryRead(Path.Combine(cellRoot, FileName))?["stages"] as JsonObject;
        long peak = 0;
        string? allocator = null;
        foreach (var stage in TrainingStages)
        {
            if (StageManifest.TryRead(Path.Combine(cellRoot, stage)) is not { } manifest) continue;
            var entry = recorded?[stage];
            if (entry is null || entry["fingerprint"]?.GetValue<string>() != manifest.Fingerprint
                              || entry["started"]?.GetValue<string>() != manifest.Started.ToString("O"))
                return (null, null, $"{stage} did not run in a process of the cell's own (`forgetless study` runs each cell in one)");
            if (entry["peak_rss_bytes"]?.GetValue<long>() is not { } bytes)
                return (null, null, "this system reports no peak resident set");
            peak = Math.Max(peak, bytes);
            allocator ??= entry["allocator"]?.GetValue<string>();
        }
        return peak > 0 ? (peak, allocator, null) : (null, null, "the cell has no training stage");
    }

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static JsonObject? TryRead(string path)
    {
        if (!File.Exists(path)) return null;
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject;
        }
        catch (JsonException)
        {
            return null; // a damaged record is an unknown peak, not an error of the study
        }
    }
}
