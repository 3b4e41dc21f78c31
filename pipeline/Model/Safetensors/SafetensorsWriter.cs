using Forgetless.Model.Devices;
using Forgetless.Runs;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;
using static TorchSharp.torch;

namespace Forgetless.Model.Safetensors;

/// <summary>
/// Writes safetensors files deterministically (keys in ordinal order, no timestamps, header padded with
/// spaces to 8 bytes as the reference writer does) and atomically (temp file in the same folder, then a
/// rename), so a crash never leaves a half-written checkpoint under the real name.
/// <c>__metadata__</c> comes first: <c>{"format":"pt"}</c> when no metadata is given, left out when it is empty.
/// </summary>
public static class SafetensorsWriter
{
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors,
        SafetensorsDType dtype = SafetensorsDType.F32, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var (header, blobs) = Encode(tensors, dtype, metadata);
        AtomicFile.Write(path, stream => WriteTo(stream, header, blobs));
    }

    /// <summary>The bytes <see cref="Write"/> would put in a file.</summary>
    public static byte[] Serialize(IEnumerable<KeyValuePair<string, Tensor>> tensors,
        SafetensorsDType dtype = SafetensorsDType.F32, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var (header, blobs) = Encode(tensors, dtype, metadata);
        using var stream = new MemoryStream();
        WriteTo(stream, header, blobs);
        return stream.ToArray();
    }

    private static (byte[] header, List<byte[]> blobs) Encode(IEnumerable<KeyValuePair<string, Tensor>> tensors,
        SafetensorsDType dtype, IReadOnlyDictionary<string, string>? metadata)
    {
        if (dtype == SafetensorsDType.F16)
            throw new NotSupportedException("Writing F16 is not supported; use F32, BF16 or Keep");
        var sorted = tensors.OrderBy(t => t.Key, StringComparer.Ordinal).ToArray();

        var blobs = new List<byte[]>(sorted.Length);
        var headerBuffer = new MemoryStream();
        // Relaxed escaping writes metadata JSON (e.g. sampler state) with \" rather than \u0022, as the reference does.
        using (var json = new Utf8JsonWriter(headerBuffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            var meta = metadata ?? new Dictionary<string, string> { ["format"] = "pt" };
            if (meta.Count > 0)
            {
                json.WritePropertyName("__metadata__");
                json.WriteStartObject();
                foreach (var (k, v) in meta.OrderBy(m => m.Key, StringComparer.Ordinal)) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, tensor) in sorted)
            {
                if (name == "__metadata__") throw new ArgumentException("'__metadata__' is reserved and cannot name a tensor.");
                var (blob, stored) = Encode(tensor, dtype);
                blobs.Add(blob);
                json.WritePropertyName(name);
                json.WriteStartObject();
                json.WriteString("dtype", stored);
                json.WriteStartArray("shape");
                foreach (var d in tensor.shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + blob.Length);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += blob.Length;
            }
            json.WriteEndObject();
        }
        return (headerBuffer.ToArray(), blobs);
    }

    private static void WriteTo(Stream stream, byte[] header, List<byte[]> blobs)
    {
        var padded = (header.Length + 7) / 8 * 8;
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(prefix, padded);
        stream.Write(prefix);
        stream.Write(header);
        for (var i = header.Length; i < padded; i++) stream.WriteByte((byte)' ');
        foreach (var blob in blobs) stream.Write(blob);
    }

    private static (byte[] blob, string dtype) Encode(Tensor tensor, SafetensorsDType dtype)
    {
        if (dtype == SafetensorsDType.Keep)
        {
            var name = KeptName(tensor.dtype);
            return (HostValues.Bytes(tensor), name);
        }
        var values = HostValues.Floats(tensor);
        if (dtype == SafetensorsDType.F32) return (MemoryMarshal.AsBytes(values.AsSpan()).ToArray(), "F32");
        var bf16 = new ushort[values.Length];
        for (var i = 0; i < values.Length; i++) bf16[i] = ToBFloat16(values[i]);
        return (MemoryMarshal.AsBytes(bf16.AsSpan()).ToArray(), "BF16");
    }

    private static string KeptName(ScalarType t) => t switch
    {
        ScalarType.Float32 => "F32",
        ScalarType.Int64 => "I64",
        ScalarType.Int32 => "I32",
        ScalarType.Byte => "U8",
        ScalarType.Int8 => "I8",
        _ => throw new NotSupportedException($"safetensors writer: dtype {t} is not supported with Keep (store F32, I64, I32, U8 or I8)."),
    };

    /// <summary>Round to nearest even, as torch does when casting float32 to bfloat16.</summary>
    internal static ushort ToBFloat16(float value)
    {
        var bits = (uint)BitConverter.SingleToInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x40);
        var rounding = 0x7FFFu + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }
}
