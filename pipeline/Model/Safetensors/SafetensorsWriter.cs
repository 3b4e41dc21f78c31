using Forgetless.Runs;
using Forgetless.Model;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using static TorchSharp.torch;

namespace Forgetless.Model.Safetensors;

/// <summary>
/// Writes safetensors files deterministically (keys in ordinal order, no timestamps, header padded with
/// spaces to 8 bytes as the reference writer does) and atomically (temp file in the same folder, then a
/// rename), so a crash never leaves a half-written checkpoint under the real name.
/// </summary>
public static class SafetensorsWriter
{
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors,
        SafetensorsDType dtype = SafetensorsDType.F32, IReadOnlyDictionary<string, string>? metadata = null)
    {
        if (dtype == SafetensorsDType.F16)
            throw new NotSupportedException("Writing F16 is not supported; use F32 or BF16");
        var sorted = tensors.OrderBy(t => t.Key, StringComparer.Ordinal).ToArray();

        var blobs = new List<byte[]>(sorted.Length);
        var headerBuffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(headerBuffer))
        {
            json.WriteStartObject();
            json.WritePropertyName("__metadata__");
            json.WriteStartObject();
            var meta = metadata ?? new Dictionary<string, string> { ["format"] = "pt" };
            foreach (var (k, v) in meta.OrderBy(m => m.Key, StringComparer.Ordinal)) json.WriteString(k, v);
            json.WriteEndObject();
            long offset = 0;
            foreach (var (name, tensor) in sorted)
            {
                var blob = Encode(tensor, dtype);
                blobs.Add(blob);
                json.WritePropertyName(name);
                json.WriteStartObject();
                json.WriteString("dtype", dtype.ToString());
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
        var header = headerBuffer.ToArray();
        var padded = (header.Length + 7) / 8 * 8;

        AtomicFile.Write(path, stream =>
        {
            Span<byte> prefix = stackalloc byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(prefix, padded);
            stream.Write(prefix);
            stream.Write(header);
            for (var i = header.Length; i < padded; i++) stream.WriteByte((byte)' ');
            foreach (var blob in blobs) stream.Write(blob);
        });
    }

    private static byte[] Encode(Tensor tensor, SafetensorsDType dtype)
    {
        using var f32 = tensor.detach().to(ScalarType.Float32).contiguous();
        var values = f32.data<float>().ToArray();
        if (dtype == SafetensorsDType.F32) return MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
        var bf16 = new ushort[values.Length];
        for (var i = 0; i < values.Length; i++) bf16[i] = ToBFloat16(values[i]);
        return MemoryMarshal.AsBytes(bf16.AsSpan()).ToArray();
    }

    /// <summary>Round to nearest even, as torch does when casting float32 to bfloat16.</summary>
    internal static ushort ToBFloat16(float value)
    {
        var bits = (uint)BitConverter.SingleToInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x40);
        var rounding = 0x7FFFu + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }
}
