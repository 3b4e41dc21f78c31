using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace Forgetless.Packaging;

/// <summary>
/// Archives whose bytes depend only on the files' names and contents: entries sorted ordinally, one
/// fixed timestamp (<c>SOURCE_DATE_EPOCH</c> when set, else 1980-01-01), modes 0644/0755, owner 0:0
/// with no user or group names, and a gzip header without a name or mtime (OS byte 255, "unknown").
/// Everything sits under one top-level folder named like the package.
/// </summary>
public static class DeterministicArchive
{
    /// <summary>1980-01-01T00:00:00Z: the earliest time a zip entry can hold, used for tar too.</summary>
    public const long DefaultEpoch = 315532800;

    /// <summary>The entry timestamp: <c>SOURCE_DATE_EPOCH</c> (reproducible-builds.org) when set, else 1980-01-01.</summary>
    public static long Epoch()
    {
        var value = Environment.GetEnvironmentVariable("SOURCE_DATE_EPOCH");
        if (string.IsNullOrEmpty(value)) return DefaultEpoch;
        if (!long.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long epoch))
            throw new UserInputException($"SOURCE_DATE_EPOCH = '{value}': expected seconds since 1970 as a whole number");
        return Math.Max(epoch, DefaultEpoch);
    }

    /// <summary>Folders (with a trailing '/') and files of <paramref name="folder"/> under <paramref name="root"/>, sorted.</summary>
    private static List<(string Name, string? File)> Entries(string folder, string root)
    {
        var entries = new List<(string, string?)> { (root + "/", null) };
        foreach (var dir in Directory.EnumerateDirectories(folder, "*", SearchOption.AllDirectories))
            entries.Add((root + "/" + Path.GetRelativePath(folder, dir).Replace('\\', '/') + "/", null));
        foreach (var file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories))
        {
            if (new FileInfo(file).LinkTarget is not null)
                throw new PackageException($"{file}: a symbolic link; packages hold regular files only");
            entries.Add((root + "/" + Path.GetRelativePath(folder, file).Replace('\\', '/'), file));
        }
        entries.Sort((a, b) => string.CompareOrdinal(a.Item1, b.Item1));
        return entries;
    }

    // ---------------------------------------------------------------- tar.gz

    public static void WriteTarGz(string folder, string root, string path, long? epoch = null)
    {
        long mtime = epoch ?? Epoch();
        Runs.AtomicFile.Write(path, output =>
        {
            using var gzip = new DeterministicGzip(output);
            WriteTar(gzip, Entries(folder, root), mtime);
        });
    }

    private static void WriteTar(Stream output, List<(string Name, string? File)> entries, long mtime)
    {
        long written = 0;
        var header = new byte[512];
        foreach (var (name, file) in entries)
        {
            long size = file is null ? 0 : new FileInfo(file).Length;
            TarHeader(header, name, file is null, size, mtime);
            output.Write(header);
            written += 512;
            if (file is null) continue;
            using (var input = File.OpenRead(file)) input.CopyTo(output);
            int pad = (int)((512 - size % 512) % 512);
            output.Write(new byte[pad]);
            written += size + pad;
        }
        // Two zero blocks end the archive; pad to tar's default 10240-byte record like GNU tar.
        long end = written + 1024;
        long total = (end + 10239) / 10240 * 10240;
        output.Write(new byte[total - written]);
    }

    /// <summary>A POSIX ustar header: name (split into prefix/name past 100 bytes), mode, 0:0, size, mtime, type.</summary>
    private static void TarHeader(byte[] h, string name, bool directory, long size, long mtime)
    {
        Array.Clear(h);
        var bytes = Encoding.UTF8.GetBytes(name);
        if (bytes.Length <= 100)
        {
            bytes.CopyTo(h, 0);
        }
        else
        {
            // ustar: prefix (155 bytes) + '/' + name (100 bytes), split at a '/'.
            int split = Array.LastIndexOf(bytes, (byte)'/', Math.Min(bytes.Length - 2, 155));
            if (split <= 0 || bytes.Length - split - 1 > 100)
                throw new PackageException($"{name}: path too long for a ustar archive");
            bytes.AsSpan(0, split).CopyTo(h.AsSpan(345));
            bytes.AsSpan(split + 1).CopyTo(h.AsSpan(0));
        }
        Octal(h, 100, 8, directory ? 0x1ED /* 0755 */ : 0x1A4 /* 0644 */);
        Octal(h, 108, 8, 0);
        Octal(h, 116, 8, 0);
        Octal(h, 124, 12, size);
        Octal(h, 136, 12, mtime);
        h[156] = directory ? (byte)'5' : (byte)'0';
        Encoding.ASCII.GetBytes("ustar\0").CopyTo(h, 257);
        Encoding.ASCII.GetBytes("00").CopyTo(h, 263);
        Octal(h, 329, 8, 0);
        Octal(h, 337, 8, 0);
        // Checksum: sum of the header bytes with the checksum field read as spaces; 6 octal digits, NUL, space.
        for (int i = 148; i < 156; i++) h[i] = (byte)' ';
        long sum = h.Sum(b => (long)b);
        Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0')).CopyTo(h, 148);
        h[154] = 0;
        h[155] = (byte)' ';
    }

    private static void Octal(byte[] h, int offset, int length, long value)
    {
        string digits = Convert.ToString(value, 8).PadLeft(length - 1, '0');
        if (digits.Length > length - 1) throw new PackageException($"value {value} does not fit a {length}-byte tar field");
        Encoding.ASCII.GetBytes(digits).CopyTo(h, offset);
        h[offset + length - 1] = 0;
    }

    // ---------------------------------------------------------------- zip

    /// <summary>A zip of <paramref name="folder"/> under <paramref name="root"/>/ (files only), deflated, fixed time and modes.</summary>
    public static void WriteZip(string folder, string root, string path, long? epoch = null) =>
        WriteZip(path, Entries(folder, root).Where(e => e.File is not null)
            .Select(e => (e.Name, (Func<Stream>)(() => File.OpenRead(e.File!)))), epoch);

    /// <summary>A zip of the given (entry name, content) pairs in the given order.</summary>
    public static void WriteZip(string path, IEnumerable<(string Name, Func<Stream> Open)> entries, long? epoch = null)
    {
        var time = ZipTime(epoch ?? Epoch());
        Runs.AtomicFile.Write(path, output =>
        {
            using var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true, Encoding.UTF8);
            foreach (var (name, open) in entries)
            {
                var entry = zip.CreateEntry(name, CompressionLevel.Optimal);
                entry.LastWriteTime = time;
                entry.ExternalAttributes = 0x81A4 << 16; // regular file, 0644
                using var target = entry.Open();
                using var input = open();
                input.CopyTo(target);
            }
        });
    }

    /// <summary>Zip stores DOS clock readings without a zone (2-second steps); the UTC reading is stored as is.</summary>
    private static DateTimeOffset ZipTime(long epoch)
    {
        var utc = DateTimeOffset.FromUnixTimeSeconds(epoch);
        return utc.AddSeconds(-(utc.Second % 2));
    }
}

/// <summary>
/// gzip (RFC 1952) around a raw deflate stream, with a header that carries no file name and no
/// modification time (MTIME 0, OS 255), so the same input always gives the same bytes.
/// </summary>
internal sealed class DeterministicGzip : Stream
{
    private readonly Stream output;
    private readonly DeflateStream deflate;
    private uint crc = 0xFFFFFFFF;
    private long length;

    public DeterministicGzip(Stream output)
    {
        this.output = output;
        output.Write([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
        deflate = new DeflateStream(output, CompressionLevel.Optimal, leaveOpen: true);
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        crc = Crc32.Update(crc, buffer);
        length += buffer.Length;
        deflate.Write(buffer);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            deflate.Dispose();
            Span<byte> trailer = stackalloc byte[8];
            BinaryPrimitives.WriteUInt32LittleEndian(trailer, ~crc);
            BinaryPrimitives.WriteUInt32LittleEndian(trailer[4..], (uint)length);
            output.Write(trailer);
        }
        base.Dispose(disposing);
    }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() => deflate.Flush();
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}

/// <summary>CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as gzip's trailer needs.</summary>
internal static class Crc32
{
    private static readonly uint[] Table = Enumerable.Range(0, 256).Select(n =>
    {
        uint c = (uint)n;
        for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        return c;
    }).ToArray();

    public static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        foreach (byte b in data) crc = Table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return crc;
    }
}
