using System.Text;
using Forgetless.Runs;

namespace Forgetless.Packaging;

/// <summary>
/// <c>SHA256SUMS</c> in coreutils' <c>sha256sum</c> format (<c>HASH  path</c>, two spaces, '/' separators),
/// sorted by path, over every file of a package folder but itself and the signature envelope (which vouches for
/// itself, and may be added or replaced by another signer); <c>sha256sum -c SHA256SUMS</c> checks it.
/// </summary>
public static class Sha256Sums
{
    public const string FileName = "SHA256SUMS";

    /// <summary>Every file under <paramref name="folder"/> (relative, '/'-separated), sorted ordinally.</summary>
    public static IReadOnlyList<string> Files(string folder) =>
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(folder, f).Replace('\\', '/'))
            .Order(StringComparer.Ordinal)
            .ToList();

    public static string Format(IEnumerable<(string Path, string Sha256)> entries)
    {
        var text = new StringBuilder();
        foreach (var (path, hash) in entries.OrderBy(e => e.Path, StringComparer.Ordinal))
            text.Append(hash).Append("  ").Append(path).Append('\n');
        return text.ToString();
    }

    /// <summary>Writes SHA256SUMS over every other file of the folder.</summary>
    public static void Write(string folder) =>
        AtomicFile.WriteAllText(Path.Combine(folder, FileName), Format(
            Files(folder).Where(Listed).Select(f => (f, FileHashes.Compute(Path.Combine(folder, f))))));

    /// <summary>Whether SHA256SUMS lists the file: every file but itself and the signature envelope.</summary>
    public static bool Listed(string relativePath) => relativePath is not (FileName or InTotoStatement.EnvelopeFileName);

    public static IReadOnlyList<(string Path, string Sha256)> Parse(string text, string source)
    {
        var result = new List<(string, string)>();
        int lineNumber = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNumber++;
            if (raw.Length == 0) continue;
            // sha256sum writes "HASH  path" (text mode) or "HASH *path" (binary mode).
            if (raw.Length < 66 || raw[64] != ' ' || raw[65] is not (' ' or '*') || !raw[..64].All(Uri.IsHexDigit))
                throw new PackageException($"{source}:{lineNumber}: expected 'SHA256  path', got '{raw}'");
            result.Add((raw[66..], raw[..64].ToLowerInvariant()));
        }
        return result;
    }

    /// <summary>
    /// Checks every listed file and that no file is unlisted. Returns the problems found, each naming
    /// the file (empty: all good).
    /// </summary>
    public static IReadOnlyList<string> Check(string folder)
    {
        string sums = Path.Combine(folder, FileName);
        if (!File.Exists(sums)) return [$"{FileName} is missing; the package cannot be checked"];
        var listed = Parse(File.ReadAllText(sums), sums);
        var problems = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        // A folder given as "pkg/" (shell completion adds the slash) is the same folder as "pkg".
        string root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder)) + Path.DirectorySeparatorChar;
        foreach (var (path, expected) in listed)
        {
            seen.Add(path);
            string full = Path.GetFullPath(Path.Combine(folder, path));
            if (!full.StartsWith(root, StringComparison.Ordinal))
            {
                problems.Add($"{path}: listed path leaves the package folder");
                continue;
            }
            if (!File.Exists(full))
            {
                problems.Add($"{path}: listed in {FileName} but missing");
                continue;
            }
            string actual = FileHashes.Compute(full);
            if (actual != expected)
                problems.Add($"{path}: checksum mismatch (SHA256SUMS says {expected[..12]}…, the file has {actual[..12]}…) — the file was changed");
        }
        foreach (var file in Files(folder).Where(f => Listed(f) && !seen.Contains(f)))
            problems.Add($"{file}: not listed in {FileName} (added after packaging?)");
        return problems;
    }
}

/// <summary>A package that is malformed, tampered with, or unsafe to extract.</summary>
public sealed class PackageException(string message) : UserInputException(message);
