using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json;

namespace Forgetless.Runs;

/// <summary>
/// SHA-256 of files, remembered by (path, size, modification time) in a small JSON cache so that
/// `status` does not re-read gigabytes of unchanged inputs. Like DVC, a changed size or mtime
/// always forces a fresh hash; an unchanged pair trusts the cached one.
/// </summary>
public sealed class FileHashes
{
    private readonly string? cachePath;
    private readonly ConcurrentDictionary<string, Entry> entries = new(StringComparer.Ordinal);
    private bool dirty;

    public FileHashes(string? cachePath = null)
    {
        this.cachePath = cachePath;
        if (cachePath is not null && File.Exists(cachePath))
        {
            try
            {
                var loaded = JsonSerializer.Deserialize<Dictionary<string, Entry>>(File.ReadAllText(cachePath));
                foreach (var (key, value) in loaded ?? []) entries[key] = value;
            }
            catch (JsonException)
            {
                // A damaged cache only costs time: start over.
            }
        }
    }

    public sealed record Entry(long Size, long MtimeTicks, string Sha256);

    public string Sha256(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"{path}: file not found", path);
        string key = info.FullName;
        long ticks = info.LastWriteTimeUtc.Ticks;
        if (entries.TryGetValue(key, out var cached) && cached.Size == info.Length && cached.MtimeTicks == ticks)
            return cached.Sha256;
        string hash = Compute(path);
        entries[key] = new Entry(info.Length, ticks, hash);
        dirty = true;
        return hash;
    }

    /// <summary>
    /// One SHA-256 for every file under a folder: each file's relative path and content hash, in
    /// ordinal path order. Renaming, adding, removing or editing any file changes it.
    /// </summary>
    public string DirectoryDigest(string directory) =>
        Of(string.Join('\n', Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories)
            .Select(f => (Relative: Path.GetRelativePath(directory, f).Replace('\\', '/'), Full: f))
            .OrderBy(f => f.Relative, StringComparer.Ordinal)
            .Select(f => f.Relative + "\t" + Sha256(f.Full))));

    /// <summary><see cref="DirectoryDigest(string)"/> without a hash cache: for cache keys and metadata outside the run store.</summary>
    public static string DigestOf(string directory) => new FileHashes().DirectoryDigest(directory);

    public static string Compute(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    public static string Of(string text) =>
        Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text)));

    public void Save()
    {
        if (cachePath is null || !dirty) return;
        var snapshot = new SortedDictionary<string, Entry>(entries, StringComparer.Ordinal);
        AtomicFile.WriteAllText(cachePath, JsonSerializer.Serialize(snapshot));
        dirty = false;
    }
}
