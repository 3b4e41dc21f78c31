using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Forgetless.Corpora;

/// <summary>
/// Writes derived files reproducibly: UTF-8 without BOM, "\n" line ends, gzip without a timestamp
/// or file name, each file to a temp path first and then moved into place. Remembers what it wrote
/// so that NOTICE files and the manifest can list checksums.
/// </summary>
public sealed class DerivedFiles(string directory)
{
    private static readonly UTF8Encoding Utf8 = new(false);
    private readonly SortedDictionary<string, string> _written = new(StringComparer.Ordinal);

    public string Directory { get; } = directory;

    /// <summary>File name (relative to <see cref="Directory"/>) to SHA-256 of its bytes.</summary>
    public IReadOnlyDictionary<string, string> Written => _written;

    public static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, Indented = false };

    public string WriteText(string name, string text) => WriteBytes(name, Utf8.GetBytes(text));

    public string WriteLines(string name, IEnumerable<string> lines)
    {
        var sb = new StringBuilder();
        foreach (var line in lines) sb.Append(line).Append('\n');
        return name.EndsWith(".gz", StringComparison.Ordinal) ? WriteBytes(name, Gzip(Utf8.GetBytes(sb.ToString()))) : WriteText(name, sb.ToString());
    }

    /// <summary>One compact JSON object per line.</summary>
    public string WriteJsonLines<T>(string name, IEnumerable<T> rows, Action<Utf8JsonWriter, T> writeRow) =>
        WriteLines(name, rows.Select(r => ToJson(w => writeRow(w, r))));

    public static string ToJson(Action<Utf8JsonWriter> body, bool indented = false)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, indented ? JsonOptions with { Indented = true, NewLine = "\n" } : JsonOptions)) body(w);
        return Utf8.GetString(buffer.ToArray());
    }

    public string WriteBytes(string name, byte[] bytes)
    {
        var path = Path.Combine(Directory, name);
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + ".tmp";
        File.WriteAllBytes(temp, bytes);
        File.Move(temp, path, overwrite: true);
        _written[name] = Sha256(bytes);
        return path;
    }

    public static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>
    /// Gzip with a fixed header: mtime 0, no name, OS byte 255 ("unknown"), so the bytes depend only on
    /// the content and the deflate implementation of the runtime.
    /// </summary>
    public static byte[] Gzip(byte[] content)
    {
        using var buffer = new MemoryStream();
        using (var gz = new GZipStream(buffer, CompressionLevel.SmallestSize, leaveOpen: true)) gz.Write(content);
        var bytes = buffer.ToArray();
        bytes[4] = bytes[5] = bytes[6] = bytes[7] = 0;
        bytes[9] = 255;
        return bytes;
    }

    public static string ReadText(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (path.EndsWith(".gz", StringComparison.Ordinal))
        {
            using var gz = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress);
            using var output = new MemoryStream();
            gz.CopyTo(output);
            bytes = output.ToArray();
        }
        return Utf8.GetString(bytes);
    }
}
