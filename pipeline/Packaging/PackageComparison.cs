using Forgetless.Runs;

namespace Forgetless.Packaging;

/// <summary>
/// Byte-for-byte comparison of two packages or two package stage outputs (folders or archives), for reproducible
/// rebuilds. Stage manifests (<c>forgetless.stage.json</c>, which hold timings) are left out. Signature envelopes are
/// compared by what they sign (payload, payload type, key ids): ECDSA signatures differ on every signing, so two signed
/// rebuilds are equal when they sign the same statement with the same key — and so are archives that differ only there.
/// </summary>
public static class PackageComparison
{
    public sealed record Difference(string Path, string Reason);

    public static IReadOnlyList<Difference> Compare(string a, string b)
    {
        if (File.Exists(a) && File.Exists(b))
        {
            if (FileHashes.Compute(a) == FileHashes.Compute(b)) return [];
            using var pa = OpenedPackage.Open(a);
            using var pb = OpenedPackage.Open(b);
            var inner = CompareFolders(pa.Folder, pb.Folder);
            if (inner.Count > 0) return inner;
            return HasEnvelope(pa.Folder) ? [] // equal but for their signatures
                : [new Difference(Path.GetFileName(a), "the archives differ although every file inside is equal (archive metadata)")];
        }
        if (Directory.Exists(a) && Directory.Exists(b)) return CompareFolders(a, b);
        throw new PackageException($"compare: give two folders or two archives ({a}, {b})");
    }

    private static List<Difference> CompareFolders(string a, string b)
    {
        var fa = Sha256Sums.Files(a).Where(Keep).ToList();
        var fb = Sha256Sums.Files(b).Where(Keep).ToHashSet(StringComparer.Ordinal);
        var differences = new List<Difference>();
        foreach (var f in fa)
        {
            if (!fb.Remove(f)) { differences.Add(new Difference(f, $"only in {a}")); continue; }
            string ha = FileHashes.Compute(Path.Combine(a, f)), hb = FileHashes.Compute(Path.Combine(b, f));
            if (ha == hb) continue;
            if (Path.GetFileName(f) == InTotoStatement.EnvelopeFileName)
            {
                if (!SameSignedContent(Path.Combine(a, f), Path.Combine(b, f))) differences.Add(new Difference(f, "signs another statement, or with another key"));
            }
            else if (SafeExtraction.IsArchive(f))
            {
                differences.AddRange(Compare(Path.Combine(a, f), Path.Combine(b, f)).Select(d => d with { Path = $"{f}: {d.Path}" }));
            }
            else
            {
                differences.Add(new Difference(f, $"different bytes ({ha[..12]}… vs {hb[..12]}…)"));
            }
        }
        differences.AddRange(fb.Select(f => new Difference(f, $"only in {b}")));
        return differences.OrderBy(d => d.Path, StringComparer.Ordinal).ToList();
    }

    private static bool Keep(string relative) => Path.GetFileName(relative) != StageManifest.FileName;

    private static bool HasEnvelope(string folder) => File.Exists(Path.Combine(folder, InTotoStatement.EnvelopeFileName));

    /// <summary>Two envelopes sign the same payload of the same type with the same keys (their signature bytes aside).</summary>
    private static bool SameSignedContent(string a, string b)
    {
        static string? Content(string path)
        {
            try
            {
                var e = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path));
                var keys = (e?["signatures"] as System.Text.Json.Nodes.JsonArray ?? []).Select(s => s?["keyid"]?.ToString());
                return $"{e?["payloadType"]}\n{e?["payload"]}\n{string.Join(",", keys)}";
            }
            catch (System.Text.Json.JsonException)
            {
                return null;
            }
        }
        return Content(a) is { } ca && ca == Content(b);
    }
}
