using System.Text;

namespace Forgetless.Data.Sources;

/// <summary>
/// Reads a file as raw UTF-8 lines (LF or CRLF) so that invalid bytes can be reported with their line,
/// rather than silently replaced by a decoding stream reader. Memory: one buffer as long as the longest line.
/// </summary>
internal sealed class Utf8LineReader : IDisposable
{
    /// <summary>A single line beyond this is treated as a malformed file rather than read into memory.</summary>
    public const int MaxLineBytes = 64 << 20;

    private readonly Stream stream;
    private readonly string path;
    private byte[] buffer = new byte[1 << 16];
    private int position;
    private int length;
    private bool endOfFile;

    public Utf8LineReader(string path)
    {
        this.path = path;
        Stream file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
        // Line-based formats may come gzip-compressed (the embedded corpora do): decompress on the fly.
        stream = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase)
            ? new System.IO.Compression.GZipStream(file, System.IO.Compression.CompressionMode.Decompress)
            : file;
    }

    /// <summary>1-based number of the line last returned.</summary>
    public long LineNumber { get; private set; }

    /// <summary>The next line without its terminator; valid until the next call.</summary>
    public bool TryReadLine(out ReadOnlyMemory<byte> line)
    {
        while (true)
        {
            var newline = buffer.AsSpan(position, length - position).IndexOf((byte)'\n');
            if (newline >= 0)
            {
                line = Take(newline, newline + 1);
                return true;
            }
            if (endOfFile)
            {
                if (position < length)
                {
                    line = Take(length - position, length - position);
                    return true;
                }
                line = default;
                return false;
            }
            Fill();
        }
    }

    private ReadOnlyMemory<byte> Take(int count, int consumed)
    {
        var start = position;
        position += consumed;
        LineNumber++;
        if (count > 0 && buffer[start + count - 1] == (byte)'\r') count--;
        if (LineNumber == 1 && count >= 3 && buffer[start] == 0xEF && buffer[start + 1] == 0xBB && buffer[start + 2] == 0xBF)
        {
            start += 3;
            count -= 3;
        }
        return new ReadOnlyMemory<byte>(buffer, start, count);
    }

    private void Fill()
    {
        if (position > 0)
        {
            Buffer.BlockCopy(buffer, position, buffer, 0, length - position);
            length -= position;
            position = 0;
        }
        if (length == buffer.Length)
        {
            if (buffer.Length >= MaxLineBytes)
                throw new DataFormatException(path, LineNumber + 1, $"line is longer than {MaxLineBytes >> 20} MiB; expected one record per line.");
            Array.Resize(ref buffer, Math.Min(buffer.Length * 2, MaxLineBytes));
        }
        var read = stream.Read(buffer, length, buffer.Length - length);
        if (read == 0) endOfFile = true;
        length += read;
    }

    /// <summary>Decodes <paramref name="bytes"/>, or says where the first invalid UTF-8 byte is.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> bytes, out string text, out string? error)
    {
        if (System.Text.Unicode.Utf8.IsValid(bytes))
        {
            text = Encoding.UTF8.GetString(bytes);
            error = null;
            return true;
        }
        var offset = 0;
        while (offset < bytes.Length && System.Text.Rune.DecodeFromUtf8(bytes[offset..], out _, out var used) == System.Buffers.OperationStatus.Done)
            offset += used;
        text = "";
        error = $"invalid UTF-8 at byte {offset + 1} of the line (0x{bytes[Math.Min(offset, bytes.Length - 1)]:X2}); expected UTF-8 text.";
        return false;
    }

    public void Dispose() => stream.Dispose();
}
