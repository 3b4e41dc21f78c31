namespace Forgetless.Packaging;

/// <summary>A package folder ready to read: the folder itself, or an archive extracted to a temp folder (removed on dispose).</summary>
public sealed class OpenedPackage : IDisposable
{
    private readonly string? temp;

    private OpenedPackage(string folder, string? temp, bool withoutMerged = false)
    {
        Folder = folder;
        this.temp = temp;
        WithoutMerged = withoutMerged;
    }

    public string Folder { get; }

    /// <summary>A .nupkg carries the package without <c>merged/</c> (a whole model is no package reference).</summary>
    public bool WithoutMerged { get; }

    /// <summary>Opens a package folder, or extracts a .tar.gz/.zip/.nupkg safely and finds the package folder inside.</summary>
    public static OpenedPackage Open(string path)
    {
        if (Directory.Exists(path)) return new OpenedPackage(Path.GetFullPath(path), null);
        if (!File.Exists(path)) throw new PackageException($"{path}: no such package folder or archive");
        if (!SafeExtraction.IsArchive(path)) throw new PackageException($"{path}: not a package folder or a .tar.gz/.zip/.nupkg archive");
        string temp = Path.Combine(Path.GetTempPath(), "forgetless-verify-" + Guid.NewGuid().ToString("N")[..12]);
        try
        {
            SafeExtraction.Extract(path, temp);
            return new OpenedPackage(FindPackageFolder(temp, path), temp, path.EndsWith(".nupkg", StringComparison.OrdinalIgnoreCase));
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    private static string FindPackageFolder(string extracted, string archive)
    {
        if (File.Exists(Path.Combine(extracted, Sha256Sums.FileName))) return extracted;
        var dirs = Directory.GetDirectories(extracted);
        if (dirs.Length == 1 && File.Exists(Path.Combine(dirs[0], Sha256Sums.FileName))) return dirs[0];
        string nupkgContent = Path.Combine(extracted, "contentFiles", "any", "any", "adapters");
        if (Directory.Exists(nupkgContent) && Directory.GetDirectories(nupkgContent) is [var only] && File.Exists(Path.Combine(only, Sha256Sums.FileName)))
            return only;
        throw new PackageException($"{archive}: no package folder with {Sha256Sums.FileName} inside");
    }

    public void Dispose()
    {
        if (temp is not null) TryDelete(temp);
    }

    private static void TryDelete(string path)
    {
        try { if (Directory.Exists(path)) Directory.Delete(path, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
