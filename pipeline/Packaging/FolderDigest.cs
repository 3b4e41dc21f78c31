using System.Text.Json.Nodes;
using Forgetless.Runs;

namespace Forgetless.Packaging;

/// <summary>One file of a folder of weights: path relative to the folder ('/'-separated), SHA-256 and size.</summary>
public sealed record FileDigest(string Path, string Sha256, long Size)
{
    public JsonObject ToJson() => new() { ["path"] = Path, ["sha256"] = Sha256, ["size"] = Size };

    public static FileDigest FromJson(JsonNode? node, string source) =>
        node is JsonObject o && o["path"]?.GetValue<string>() is { } path && o["sha256"]?.GetValue<string>() is { } sha && o["size"]?.GetValue<long>() is { } size
            ? new FileDigest(path, sha, size)
            : throw new PackageException($"{source}: a file entry needs path, sha256 and size");
}

/// <summary>
/// What a folder of weights is, by content: every file with its SHA-256, and one digest over them — SHA-256 of the
/// sorted lines <c>path TAB sha256</c> joined by newlines (the run store's folder digest, so the two agree).
/// Two folders with the same digest hold the same bytes under the same names, wherever they lie.
/// </summary>
public sealed record FolderDigest(string Digest, IReadOnlyList<FileDigest> Files)
{
    public static FolderDigest Of(string folder)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"folder not found: {folder}");
        var files = Sha256Sums.Files(folder)
            .Select(f => new FileDigest(f, FileHashes.Compute(System.IO.Path.Combine(folder, f)), new FileInfo(System.IO.Path.Combine(folder, f)).Length))
            .ToList();
        return new FolderDigest(DigestOf(files), files);
    }

    public static string DigestOf(IEnumerable<FileDigest> files) =>
        FileHashes.Of(string.Join('\n', files.OrderBy(f => f.Path, StringComparer.Ordinal).Select(f => f.Path + "\t" + f.Sha256)));

    /// <summary>The digest a short form shows (first 12 hex digits).</summary>
    public string Short => Digest[..12] + "…";

    public JsonObject ToJson() => new()
    {
        ["digest"] = Digest,
        ["files"] = new JsonArray(Files.OrderBy(f => f.Path, StringComparer.Ordinal).Select(f => (JsonNode)f.ToJson()).ToArray()),
    };

    /// <summary>Reads the form <see cref="ToJson"/> writes; the digest must agree with the files listed.</summary>
    public static FolderDigest FromJson(JsonNode? node, string source)
    {
        if (node is not JsonObject o || o["digest"]?.GetValue<string>() is not { } digest || o["files"] is not JsonArray files)
            throw new PackageException($"{source}: expected an object with digest and files");
        var list = files.Select(f => FileDigest.FromJson(f, source)).ToList();
        if (DigestOf(list) != digest) throw new PackageException($"{source}: the digest {digest[..12]}… does not match the files it lists");
        return new FolderDigest(digest, list);
    }

    /// <summary>How this folder differs from <paramref name="expected"/>, file by file (for a refusal message).</summary>
    public string DifferencesFrom(FolderDigest expected)
    {
        var mine = Files.ToDictionary(f => f.Path, StringComparer.Ordinal);
        var theirs = expected.Files.ToDictionary(f => f.Path, StringComparer.Ordinal);
        var lines = new List<string>();
        foreach (var (path, file) in theirs)
            if (!mine.TryGetValue(path, out var m)) lines.Add($"{path} is missing");
            else if (m.Sha256 != file.Sha256) lines.Add($"{path} has other bytes");
        lines.AddRange(mine.Keys.Where(p => !theirs.ContainsKey(p)).Select(p => $"{p} was not there"));
        return string.Join(", ", lines.Take(5)) + (lines.Count > 5 ? $" and {lines.Count - 5} more" : "");
    }
}
