namespace Forgetless.Runs;

public enum StageState { UpToDate, Stale, NeverRun }

/// <summary>Whether a stage can be skipped, and if not, why (the way `dvc status` explains).</summary>
public sealed record StageStatus(string Stage, StageState State, IReadOnlyList<string> Reasons, Fingerprint Fingerprint)
{
    public bool IsUpToDate => State == StageState.UpToDate;

    public string Describe() => State switch
    {
        StageState.UpToDate => $"{Stage}: up to date",
        StageState.NeverRun => $"{Stage}: never run",
        _ => $"{Stage}: stale — " + string.Join("; ", Reasons),
    };

    internal static IReadOnlyList<string> Compare(StageManifest manifest, Fingerprint current, string toolVersion,
        string stageDirectory, FileHashes hashes)
    {
        var reasons = new List<string>();
        if (manifest.ToolVersion != toolVersion)
            reasons.Add($"tool version changed ({manifest.ToolVersion} -> {toolVersion})");

        var before = manifest.Inputs.ToDictionary(i => i.Name, StringComparer.Ordinal);
        var now = current.Inputs.ToDictionary(i => i.Name, StringComparer.Ordinal);
        foreach (var (name, input) in now)
        {
            if (!before.TryGetValue(name, out var old))
                reasons.Add($"new input '{name}'");
            else if (input.Sha256 == "missing")
                reasons.Add($"input '{name}' is missing ({input.Source})");
            else if (old.Sha256 != input.Sha256)
                reasons.Add(DescribeChange(name, old, input));
        }
        foreach (var name in before.Keys.Where(n => !now.ContainsKey(n)))
            reasons.Add($"input '{name}' is no longer declared");

        foreach (var output in manifest.Outputs)
        {
            string path = Path.Combine(stageDirectory, output.Path);
            if (!File.Exists(path)) reasons.Add($"output '{output.Path}' is missing");
            else if (new FileInfo(path).Length != output.Size || hashes.Sha256(path) != output.Sha256)
                reasons.Add($"output '{output.Path}' was modified");
        }
        if (reasons.Count == 0 && manifest.Fingerprint != current.Value)
            reasons.Add("fingerprint changed");
        return reasons;
    }

    private static string DescribeChange(string name, StageManifest.InputRecord old, StageManifest.InputRecord now)
    {
        if (now.Kind == "upstream") return $"upstream stage '{now.Source}' has new outputs";
        if (now.Kind == "value" && old.Source.Length + now.Source.Length < 160)
            return $"'{name}' changed ({old.Source} -> {now.Source})";
        if (now.Kind == "value") return $"'{name}' changed";
        return $"input '{name}' changed ({now.Source})";
    }
}
