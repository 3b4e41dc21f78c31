using System.Buffers.Binary;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using static TorchSharp.torch;

namespace Forgetless.Peft;

/// <summary>
/// A minimal, deterministic safetensors writer and reader for adapters and optimizer state.
/// File = 8-byte little-endian header length N, N bytes of JSON header (padded with spaces so the data
/// starts at a multiple of 8), then the tensors' raw little-endian bytes. The writer puts
/// <c>__metadata__</c> first and the tensors in ordinal key order, both in the header and in the data,
/// so the same tensors always give the same bytes. Writes F32, I64, I32, U8, I8; reads those plus
/// F16/BF16 (converted to F32).
/// </summary>
public static class SafetensorsFile
{
    public sealed record Contents(SortedDictionary<string, Tensor> Tensors, SortedDictionary<string, string> Metadata);

    private static string DtypeName(ScalarType t) => t switch
    {
        ScalarType.Float32 => "F32",
        ScalarType.Int64 => "I64",
        ScalarType.Int32 => "I32",
        ScalarType.Byte => "U8",
        ScalarType.Int8 => "I8",
        _ => throw new NotSupportedException($"safetensors writer: dtype {t} is not supported (store f32)."),
    };

    public static byte[] Serialize(IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var keys = tensors.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList();
        var blobs = new List<byte[]>(keys.Count);
        using var header = new MemoryStream();
        using (var w = new Utf8JsonWriter(header, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var key in keys)
            {
                if (key == "__metadata__") throw new ArgumentException("'__metadata__' is reserved.");
                var t = tensors[key];
                using var c = t.detach().cpu().contiguous();
                var bytes = c.bytes.ToArray();
                blobs.Add(bytes);
                w.WriteStartObject(key);
                w.WriteString("dtype", DtypeName(t.dtype));
                w.WriteStartArray("shape");
                foreach (var d in t.shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + bytes.LongLength);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += bytes.LongLength;
            }
            w.WriteEndObject();
        }
        var headerBytes = header.ToArray().ToList();
        while (headerBytes.Count % 8 != 0) headerBytes.Add((byte)' ');
        using var output = new MemoryStream();
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)headerBytes.Count);
        output.Write(len);
        output.Write(headerBytes.ToArray());
        foreach (var b in blobs) output.Write(b);
        return output.ToArray();
    }

    /// <summary>Writes to a temp file beside <paramref name="path"/> and moves it into place.</summary>
    public static void Write(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var bytes = Serialize(tensors, metadata);
        var tmp = path + ".tmp";
        File.WriteAllBytes(tmp, bytes);
        File.Move(tmp, path, overwrite: true);
    }

    public static Contents Read(string path)
    {
        try
        {
            return Parse(File.ReadAllBytes(path));
        }
        catch (FormatException e)
        {
            throw new FormatException($"{path}: {e.Message}", e);
        }
    }

    public static Contents Parse(byte[] file)
    {
        if (file.Length < 8) throw new FormatException("not a safetensors file (shorter than 8 bytes).");
        var n = BinaryPrimitives.ReadUInt64LittleEndian(file);
        if (n > (ulong)(file.Length - 8)) throw new FormatException($"header length {n} exceeds the file size {file.Length}.");
        var dataStart = 8 + (int)n;
        using var doc = JsonDocument.Parse(Encoding.UTF8.GetString(file, 8, (int)n).TrimEnd(' '));
        var tensors = new SortedDictionary<string, Tensor>(StringComparer.Ordinal);
        var metadata = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in doc.RootElement.EnumerateObject())
        {
            if (entry.Name == "__metadata__")
            {
                foreach (var m in entry.Value.EnumerateObject()) metadata[m.Name] = m.Value.GetString() ?? "";
                continue;
            }
            var dtype = entry.Value.GetProperty("dtype").GetString();
            var shape = entry.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var offsets = entry.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var count = shape.Aggregate(1L, (a, b) => a * b);
            var (scalar, size) = dtype switch
            {
                "F32" => (ScalarType.Float32, 4),
                "F16" => (ScalarType.Float32, 2),
                "BF16" => (ScalarType.Float32, 2),
                "I64" => (ScalarType.Int64, 8),
                "I32" => (ScalarType.Int32, 4),
                "U8" => (ScalarType.Byte, 1),
                "I8" => (ScalarType.Int8, 1),
                _ => throw new FormatException($"tensor '{entry.Name}': dtype {dtype} is not supported."),
            };
            if (offsets.Length != 2 || offsets[1] - offsets[0] != count * size || dataStart + offsets[1] > file.Length)
                throw new FormatException($"tensor '{entry.Name}': data_offsets [{string.Join(", ", offsets)}] do not fit shape [{string.Join(", ", shape)}] of {dtype} or the file.");
            var span = file.AsSpan(dataStart + (int)offsets[0], (int)(offsets[1] - offsets[0]));
            Tensor t;
            if (dtype is "F16" or "BF16")
            {
                var values = new float[count];
                for (var i = 0; i < count; i++)
                {
                    var bits = BinaryPrimitives.ReadUInt16LittleEndian(span.Slice(2 * i, 2));
                    values[i] = dtype == "F16" ? (float)BitConverter.UInt16BitsToHalf(bits) : BitConverter.Int32BitsToSingle(bits << 16);
                }
                t = tensor(values, shape);
            }
            else
            {
                t = empty(shape, scalar);
                if (count > 0) t.bytes = span;
            }
            tensors[entry.Name] = t;
        }
        return new Contents(tensors, metadata);
    }
}
