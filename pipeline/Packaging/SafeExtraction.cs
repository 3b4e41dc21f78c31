using System.Formats.Tar;
using System.IO.Compression;

namespace Forgetless.Packaging;

/// <summary>
/// How much an archive may expand to. A compression "bomb" (a few MB of gzip that inflate to gigabytes) is stopped
/// while it is written: past <see cref="RatioFloor"/> the extracted bytes may be at most <see cref="MaxRatio"/> times the
/// archive's size, and never more than <see cref="MaxBytes"/>. Real packages are far from both: weights barely compress
/// (about 1.1×), configs and model cards a few times.
/// </summary>
public sealed record ExtractionLimits
{
    public long MaxBytes { get; init; } = 64L << 30;
    public double MaxRatio { get; init; } = 20;
    public long RatioFloor { get; init; } = 32L << 20;
    public int MaxEntries { get; init; } = 100_000;

    public static ExtractionLimits Default { get; } = new();

    /// <summary>The most bytes an archive of <paramref name="archiveBytes"/> may extract to.</summary>
    public long AllowedFor(long archiveBytes) => Math.Min(MaxBytes, Math.Max(RatioFloor, (long)Math.Min(long.MaxValue / 2.0, MaxRatio * archiveBytes)));
}

/// <summary>
/// Extracts a package archive (.tar.gz, .tgz, .tar, .zip, .nupkg) into a folder, refusing every entry
/// that could write outside it: absolute paths, '..' segments, and symbolic or hard links (a link
/// inside the folder could point anywhere). Devices, FIFOs and other special entries are refused too, and so is an
/// archive that expands past its <see cref="ExtractionLimits"/> (the partly written entry is removed).
/// </summary>
public static class SafeExtraction
{
    public static bool IsArchive(string path) =>
        path.EndsWith(".tar.gz", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".tgz", StringComparison.OrdinalIgnoreCase)
        || path.EndsWith(".tar", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".zip", StringComparison.OrdinalIgnoreCase)
        || path.EndsWith(".nupkg", StringComparison.OrdinalIgnoreCase);

    public static void Extract(string archive, string target, ExtractionLimits? limits = null)
    {
        if (!File.Exists(archive)) throw new FileNotFoundException($"{archive}: archive not found", archive);
        Directory.CreateDirectory(target);
        var budget = new Budget(archive, limits ?? ExtractionLimits.Default);
        if (archive.EndsWith(".zip", StringComparison.OrdinalIgnoreCase) || archive.EndsWith(".nupkg", StringComparison.OrdinalIgnoreCase))
            ExtractZip(archive, target, budget);
        else
            ExtractTar(archive, target, budget);
    }

    /// <summary>Counts what an extraction has written against its limits.</summary>
    private sealed class Budget(string archive, ExtractionLimits limits)
    {
        private readonly long archiveBytes = new FileInfo(archive).Length;
        private long written;
        private int entries;

        private long Allowed => limits.AllowedFor(archiveBytes);

        public void CountEntry(string name)
        {
            if (++entries > limits.MaxEntries)
                throw new PackageException($"{archive}: more than {limits.MaxEntries} entries (at '{name}'); refused");
        }

        /// <summary>Copies one entry's data, stopping (and removing what it wrote) as soon as the archive expands too far.</summary>
        public void Copy(Stream input, string path, string name)
        {
            using (var output = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
            {
                var buffer = new byte[1 << 16];
                int n;
                while ((n = input.Read(buffer, 0, buffer.Length)) > 0)
                {
                    if (written + n > Allowed)
                    {
                        output.Dispose();
                        File.Delete(path);
                        throw Refusal(name);
                    }
                    output.Write(buffer, 0, n);
                    written += n;
                }
            }
        }

        /// <summary>Refuses up front what an archive declares it will expand to (a zip's sizes), when that is already too much.</summary>
        public void CheckDeclared(long declared, string name)
        {
            if (declared > Allowed) throw Refusal(name);
        }

        private PackageException Refusal(string name) => Allowed >= limits.MaxBytes
            ? new PackageException($"{archive}: entry '{name}' takes the extracted size to more than {Mib(limits.MaxBytes)}; refused (the limit on what a package may hold)")
            : new PackageException($"{archive}: entry '{name}' expands the {Mib(archiveBytes)} archive past {Mib(Allowed)} " +
                                   $"(more than {limits.MaxRatio:0.#}× its size); refused as a compression bomb");

        private static string Mib(long bytes) => bytes >= 1 << 20 ? $"{bytes / (double)(1 << 20):0.#} MiB" : $"{bytes / 1024.0:0.#} KiB";
    }

    private static void ExtractTar(string archive, string target, Budget budget)
    {
        using var file = File.OpenRead(archive);
        bool gzip = !archive.EndsWith(".tar", StringComparison.OrdinalIgnoreCase);
        using Stream input = gzip ? new GZipStream(file, CompressionMode.Decompress) : file;
        using var reader = new TarReader(input);
        try
        {
            while (reader.GetNextEntry() is { } entry)
            {
                budget.CountEntry(entry.Name);
                switch (entry.EntryType)
                {
                    case TarEntryType.Directory:
                        Directory.CreateDirectory(TargetPath(archive, target, entry.Name));
                        break;
                    case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                    {
                        string path = TargetPath(archive, target, entry.Name);
                        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                        budget.Copy(entry.DataStream ?? Stream.Null, path, entry.Name);
                        break;
                    }
                    case TarEntryType.SymbolicLink or TarEntryType.HardLink:
                        throw new PackageException(
                            $"{archive}: entry '{entry.Name}' is a {(entry.EntryType == TarEntryType.SymbolicLink ? "symbolic" : "hard")} link to '{entry.LinkName}'; " +
                            "links are refused (they can point outside the extraction folder)");
                    case TarEntryType.GlobalExtendedAttributes or TarEntryType.ExtendedAttributes:
                        break;
                    default:
                        throw new PackageException($"{archive}: entry '{entry.Name}' is a {entry.EntryType} entry; only files and folders are extracted");
                }
            }
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException)
        {
            throw new PackageException($"{archive}: not a valid {(gzip ? "tar.gz" : "tar")} archive ({e.Message})");
        }
    }

    private static void ExtractZip(string archive, string target, Budget budget)
    {
        ZipArchive zip;
        try
        {
            zip = ZipFile.OpenRead(archive);
        }
        catch (InvalidDataException e)
        {
            throw new PackageException($"{archive}: not a valid zip archive ({e.Message})");
        }
        using (zip)
        {
            long declared = 0;
            foreach (var entry in zip.Entries) budget.CheckDeclared(declared += entry.Length, entry.FullName);
            foreach (var entry in zip.Entries)
            {
                budget.CountEntry(entry.FullName);
                int unixType = (entry.ExternalAttributes >> 16) & 0xF000;
                if (unixType == 0xA000)
                    throw new PackageException($"{archive}: entry '{entry.FullName}' is a symbolic link; links are refused (they can point outside the extraction folder)");
                if (unixType is not (0 or 0x8000 or 0x4000))
                    throw new PackageException($"{archive}: entry '{entry.FullName}' is not a regular file or folder; refused");
                string path = TargetPath(archive, target, entry.FullName);
                if (entry.FullName.EndsWith('/'))
                {
                    Directory.CreateDirectory(path);
                    continue;
                }
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                using var input = entry.Open();
                budget.Copy(input, path, entry.FullName);
            }
        }
    }

    /// <summary>The full path an entry name maps to, or an error when the name could leave <paramref name="target"/>.</summary>
    public static string TargetPath(string archive, string target, string name)
    {
        string normalized = name.Replace('\\', '/');
        if (normalized.Length == 0 || normalized.StartsWith('/') || (normalized.Length > 1 && normalized[1] == ':') || normalized.Contains('\0'))
            throw new PackageException($"{archive}: entry '{name}' has an absolute path; refused (entries must stay inside the extraction folder)");
        if (normalized.Split('/').Any(segment => segment == ".."))
            throw new PackageException($"{archive}: entry '{name}' contains '..'; refused (path traversal out of the extraction folder)");
        string root = Path.GetFullPath(target);
        string full = Path.GetFullPath(Path.Combine(root, normalized));
        if (full != root && !full.StartsWith(root.TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new PackageException($"{archive}: entry '{name}' resolves outside the extraction folder; refused");
        return full;
    }
}
