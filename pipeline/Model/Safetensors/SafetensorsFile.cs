using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Model.Safetensors;

/// <summary>One tensor's entry in a safetensors header; offsets are relative to the data section.</summary>
public sealed record SafetensorsEntry(string Name, string DType, long[] Shape, long Begin, long End)
{
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>
/// Reads a safetensors file: 8-byte little-endian header length, a JSON header
/// <c>{name: {dtype, shape, data_offsets: [begin, end]}}</c>, then raw little-endian data.
/// Everything in the header is checked against the file before any tensor is read, so a truncated
/// or hand-edited file fails with a message naming the file and tensor instead of reading garbage.
/// </summary>
public sealed class SafetensorsFile
{
    // Same guard as the reference implementation: a header this large is a corrupt length field.
    private const long MaxHeaderBytes = 100_000_000;

    private readonly long dataStart;

    private SafetensorsFile(string path, long dataStart, Dictionary<string, SafetensorsEntry> entries, Dictionary<string, string> metadata)
    {
        Path = path;
        this.dataStart = dataStart;
        Entries = entries;
        Metadata = metadata;
    }

    public string Path { get; }
    public IReadOnlyDictionary<string, SafetensorsEntry> Entries { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    private string FileName => System.IO.Path.GetFileName(Path);

    public static SafetensorsFile Open(string path)
    {
        var name = System.IO.Path.GetFileName(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"{name}: file not found ({path})", path);
        using var stream = File.OpenRead(path);
        var fileLength = stream.Length;
        if (fileLength < 8)
            throw new InvalidDataException($"{name}: file is {fileLength} bytes, too short for a safetensors header (8-byte length prefix)");
        Span<byte> prefix = stackalloc byte[8];
        stream.ReadExactly(prefix);
        var headerLength = BinaryPrimitives.ReadInt64LittleEndian(prefix);
        if (headerLength <= 0 || headerLength > MaxHeaderBytes || headerLength > fileLength - 8)
            throw new InvalidDataException(
                $"{name}: header length {headerLength} does not fit a file of {fileLength} bytes (file truncated or not safetensors)");
        var header = new byte[headerLength];
        stream.ReadExactly(header);
        var dataLength = fileLength - 8 - headerLength;

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{name}: header is not valid JSON: {e.Message}", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{name}: header should be a JSON object");
            var entries = new Dictionary<string, SafetensorsEntry>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name == "__metadata__")
                {
                    foreach (var m in p.Value.EnumerateObject())
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                    continue;
                }
                entries[p.Name] = ReadEntry(name, p, dataLength);
            }
            CheckContiguous(name, entries.Values, dataLength);
            return new SafetensorsFile(path, 8 + headerLength, entries, metadata);
        }
    }

    /// <summary>Like the reference reader: tensors tile the data section exactly, with no gaps, overlaps or trailing bytes.</summary>
    private static void CheckContiguous(string file, IEnumerable<SafetensorsEntry> entries, long dataLength)
    {
        long expected = 0;
        foreach (var e in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (e.Begin != expected)
                throw new InvalidDataException(
                    $"{file}: tensor '{e.Name}' starts at data byte {e.Begin}, expected {expected} (tensors overlap or leave a gap)");
            expected = e.End;
        }
        if (expected != dataLength)
            throw new InvalidDataException($"{file}: tensors cover {expected} bytes but the data section has {dataLength} (extra bytes at the end)");
    }

    private static SafetensorsEntry ReadEntry(string file, JsonProperty p, long dataLength)
    {
        var where = $"{file}: tensor '{p.Name}'";
        try
        {
            var dtype = p.Value.GetProperty("dtype").GetString()!;
            var shape = p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var offsets = p.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            if (offsets.Length != 2) throw new InvalidDataException($"{where}: data_offsets should be [begin, end]");
            var entry = new SafetensorsEntry(p.Name, dtype, shape, offsets[0], offsets[1]);
            if (shape.Any(d => d < 0)) throw new InvalidDataException($"{where}: negative dimension in shape {entry.ShapeText}");
            var size = SafetensorsDTypes.AnySize(dtype) ?? throw new InvalidDataException($"{where}: unknown dtype '{dtype}'");
            if (entry.Begin < 0 || entry.End < entry.Begin || entry.End > dataLength)
                throw new InvalidDataException(
                    $"{where}: data_offsets [{entry.Begin}, {entry.End}] lie outside the {dataLength}-byte data section (file truncated?)");
            var expected = shape.Aggregate(1L, (a, b) => a * b) * size;
            if (entry.End - entry.Begin != expected)
                throw new InvalidDataException(
                    $"{where}: has {entry.End - entry.Begin} bytes of data, expected {expected} for {dtype} {entry.ShapeText}");
            return entry;
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{where}: malformed header entry ({e.Message})", e);
        }
    }

    /// <summary>Reads a tensor as float32 (F16/BF16 are widened exactly). The result is owned by the caller.</summary>
    public Tensor ReadFloat32(string name)
    {
        var e = EntryOf(name);
        if (!SafetensorsDTypes.TryParse(e.DType, out _))
            throw new InvalidDataException($"{FileName}: tensor '{name}' has dtype {e.DType}; only F32, F16 and BF16 weights are supported");
        return Read(name, ScalarType.Float32);
    }

    /// <summary>
    /// Reads a tensor in its stored type (F32, I64, I32, U8, I8); F16 and BF16 are widened to F32 exactly.
    /// The result is owned by the caller.
    /// </summary>
    public Tensor ReadTensor(string name)
    {
        var e = EntryOf(name);
        return Read(name, e.DType is "F16" or "BF16" ? ScalarType.Float32 : null);
    }

    /// <summary>All tensors (see <see cref="ReadTensor(string)"/>) in ordinal key order; the caller owns them.</summary>
    public SortedDictionary<string, Tensor> ReadAll()
    {
        var result = new SortedDictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var name in Entries.Keys) result[name] = ReadTensor(name);
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
        return result;
    }

    /// <summary>
    /// Reads a tensor straight from the memory-mapped file into a tensor of its stored type, then converts it to
    /// <paramref name="type"/> (stored type when null) on <paramref name="device"/> (the CPU when null). No managed copy is
    /// made, and a BF16 tensor read as BF16 for a GPU is never widened: at most the stored tensor and the converted one
    /// exist at once. The result is owned by the caller.
    /// </summary>
    public Tensor Read(string name, ScalarType? type = null, Device? device = null)
    {
        var e = EntryOf(name);
        var stored = StoredType(e);
        var host = empty(e.Shape, stored);
        try
        {
            CopyInto(host, e);
            var target = type ?? stored;
            var on = device ?? CPU;
            if (target == stored && on.type == DeviceType.CPU) return host;
            var converted = host.to(target, on);
            host.Dispose();
            return converted;
        }
        catch
        {
            host.Dispose();
            throw;
        }
    }

    private SafetensorsEntry EntryOf(string name) =>
        Entries.TryGetValue(name, out var e) ? e : throw new KeyNotFoundException($"{FileName}: no tensor '{name}'");

    /// <summary>The type the file stores <paramref name="name"/> in.</summary>
    public ScalarType StoredType(string name) => StoredType(EntryOf(name));

    private ScalarType StoredType(SafetensorsEntry e) => e.DType switch
    {
        "F32" => ScalarType.Float32,
        "F16" => ScalarType.Float16,
        "BF16" => ScalarType.BFloat16,
        "I64" => ScalarType.Int64,
        "I32" => ScalarType.Int32,
        "U8" => ScalarType.Byte,
        "I8" => ScalarType.Int8,
        _ => throw new InvalidDataException(
            $"{FileName}: tensor '{e.Name}' has dtype {e.DType}; only F32, F16, BF16, I64, I32, U8 and I8 are supported"),
    };

    /// <summary>Copies the entry's bytes from a read-only memory map of the file into <paramref name="target"/> (contiguous, CPU).</summary>
    private unsafe void CopyInto(Tensor target, SafetensorsEntry e)
    {
        long length = e.End - e.Begin;
        if (length == 0) return;
        using var map = MemoryMappedFile.CreateFromFile(Path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        using var view = map.CreateViewAccessor(dataStart + e.Begin, length, MemoryMappedFileAccess.Read);
        byte* source = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref source);
        try
        {
            source += view.PointerOffset;
            // TorchSharp exposes a tensor's memory as a Span, at most 2 GiB at a time: copy rows in chunks under that.
            long rowBytes = e.Shape.Length == 0 ? length : length / Math.Max(1, e.Shape[0]);
            long rowsPerChunk = e.Shape.Length == 0 || rowBytes == 0 ? 1 : Math.Max(1, (1L << 30) / Math.Max(1, rowBytes));
            if (e.Shape.Length == 0 || rowsPerChunk >= e.Shape[0])
            {
                new ReadOnlySpan<byte>(source, checked((int)length)).CopyTo(target.bytes);
                return;
            }
            for (long row = 0; row < e.Shape[0]; row += rowsPerChunk)
            {
                long rows = Math.Min(rowsPerChunk, e.Shape[0] - row);
                using var chunk = target.narrow(0, row, rows);
                new ReadOnlySpan<byte>(source + row * rowBytes, checked((int)(rows * rowBytes))).CopyTo(chunk.bytes);
            }
        }
        finally
        {
            view.SafeMemoryMappedViewHandle.ReleasePointer();
        }
    }

    public override string ToString() => $"{FileName} ({Entries.Count} tensors)";
}
