namespace Forgetless.Runs;

/// <summary>The hashed inputs of a stage and the single SHA-256 that stands for all of them.</summary>
public sealed record Fingerprint(string Value, IReadOnlyList<StageManifest.InputRecord> Inputs)
{
    /// <summary>Hashes every declared input. Upstream stages stand in by the digest of their outputs.</summary>
    public static Fingerprint Of(string stageName, StageInputs declared, string toolVersion, FileHashes hashes,
        Func<string, StageManifest?> upstreamManifest)
    {
        var records = new List<StageManifest.InputRecord>();
        foreach (var input in declared.Entries.OrderBy(e => e.Name, StringComparer.Ordinal))
            records.Add(Hash(input, hashes, upstreamManifest));
        var lines = new List<string> { "stage\t" + stageName, "tool\t" + toolVersion };
        lines.AddRange(records.Select(r => $"{r.Name}\t{r.Kind}\t{r.Sha256}"));
        return new Fingerprint(FileHashes.Of(string.Join('\n', lines)), records);
    }

    private static StageManifest.InputRecord Hash(StageInput input, FileHashes hashes, Func<string, StageManifest?> upstreamManifest)
    {
        string kind = input.Kind.ToString().ToLowerInvariant();
        switch (input.Kind)
        {
            case StageInputKind.File:
                if (!File.Exists(input.Source))
                    return new(input.Name, kind, input.Source, "missing", null);
                return new(input.Name, kind, input.Source, hashes.Sha256(input.Source), new FileInfo(input.Source).Length);
            case StageInputKind.Directory:
                if (!Directory.Exists(input.Source))
                    return new(input.Name, kind, input.Source, "missing", null);
                long size = Directory.EnumerateFiles(input.Source, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
                return new(input.Name, kind, input.Source, hashes.DirectoryDigest(input.Source), size);
            case StageInputKind.Value:
                return new(input.Name, kind, input.Source, FileHashes.Of(input.Source), null);
            case StageInputKind.Upstream:
                var manifest = upstreamManifest(input.Source);
                return new(input.Name, kind, input.Source, manifest?.OutputsDigest() ?? "missing", null);
            default:
                throw new ArgumentOutOfRangeException(nameof(input), input.Kind, null);
        }
    }
}
