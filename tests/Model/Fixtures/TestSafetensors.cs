using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace Forgetless.Tests.Model.Fixtures;

/// <summary>A tensor for fixtures: row-major float values and a shape.</summary>
public sealed record TestTensor(long[] Shape, float[] Data)
{
    public double At(params long[] index)
    {
        long flat = 0;
        for (var i = 0; i < Shape.Length; i++) flat = flat * Shape[i] + index[i];
        return Data[flat];
    }
}

/// <summary>
/// Writes safetensors files for tests, independent of the production writer, so reader tests do not
/// merely check the writer against itself. Also allows writing deliberately broken files.
/// </summary>
public static class TestSafetensors
{
    public static void Write(string path, IReadOnlyDictionary<string, TestTensor> tensors, string dtype = "F32")
    {
        var header = new Dictionary<string, object>();
        var data = new MemoryStream();
        var buffer = new byte[4];
        foreach (var (name, t) in tensors.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            var start = data.Length;
            foreach (var v in t.Data)
            {
                switch (dtype)
                {
                    case "F32":
                        BinaryPrimitives.WriteSingleLittleEndian(buffer, v);
                        data.Write(buffer, 0, 4);
                        break;
                    case "F16":
                        BinaryPrimitives.WriteHalfLittleEndian(buffer, (Half)v);
                        data.Write(buffer, 0, 2);
                        break;
                    case "BF16":
                        // Truncation is enough here: the tests compare against the same rounded values.
                        BinaryPrimitives.WriteUInt16LittleEndian(buffer, (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16));
                        data.Write(buffer, 0, 2);
                        break;
                }
            }
            header[name] = new { dtype, shape = t.Shape, data_offsets = new[] { start, data.Length } };
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        using var file = File.Create(path);
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(prefix, json.Length);
        file.Write(prefix);
        file.Write(json);
        data.Position = 0;
        data.CopyTo(file);
    }

    /// <summary>Value a BF16 file written by <see cref="Write"/> stores for <paramref name="v"/>.</summary>
    public static float TruncateToBf16(float v) => BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(v) & 0xFFFF0000u);
}
