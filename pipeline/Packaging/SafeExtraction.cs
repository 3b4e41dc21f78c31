using System.Formats.Tar;
using System.IO.Compression;

namespace Forgetless.Packaging;

/// <summary>
/// Extracts a package archive (.tar.gz, .tgz, .tar, .zip, .nupkg) into a folder, refusing every entry
/// that could write outside it: absolute paths, '..' segments, and symbolic or hard links (a link
/// inside the folder could point anywhere). Devices, FIFOs and other special entries are refused too.
/// </summary>
public static class SafeExtraction
{
    public static bool IsArchive(string path) =>
        path.EndsWith(".tar.gz", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".tgz", StringComparison.OrdinalIgnoreCase)
        || path.EndsWith(".tar", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".zip", StringComparison.OrdinalIgnoreCase)
        || path.EndsWith(".nupkg", StringComparison.OrdinalIgnoreCase);

    public static void Extract(string archive, string target)
    {
        if (!File.Exists(archive)) throw new FileNotFoundException($"{archive}: archive not found", archive);
        Directory.CreateDirectory(target);
        if (archive.EndsWith(".zip", StringComparison.OrdinalIgnoreCase) || archive.EndsWith(".nupkg", StringComparison.OrdinalIgnoreCase))
            ExtractZip(archive, target);
        else
            ExtractTar(archive, target);
    }

    private static void ExtractTar(string archive, string target)
    {
        using var file = File.OpenRead(archive);
        bool gzip = !archive.EndsWith(".tar", StringComparison.OrdinalIgnoreCase);
        using Stream input = gzip ? new GZipStream(file, CompressionMode.Decompress) : file;
        using var reader = new TarReader(input);
        try
        {
            while (reader.GetNextEntry() is { } entry)
            {
                switch (entry.EntryType)
                {
                    case TarEntryType.Directory:
                        Directory.CreateDirectory(TargetPath(archive, target, entry.Name));
                        break;
                    case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                    {
                        string path = TargetPath(archive, target, entry.Name);
                        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                        using var output = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
                        entry.DataStream?.CopyTo(output);
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

    private static void ExtractZip(string archive, string target)
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
            foreach (var entry in zip.Entries)
            {
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
                using var output = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
                input.CopyTo(output);
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
