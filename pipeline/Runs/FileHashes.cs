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
