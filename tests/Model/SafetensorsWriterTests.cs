using System.Buffers.Binary;
using System.Text.Json;
using Forgetless.Model.Safetensors;
using Forgetless.Tests.Model.Fixtures;
using static TorchSharp.torch;

namespace Forgetless.Tests.Model;

/// <summary>The production writer read back by hand, not by the production reader.</summary>
public sealed class SafetensorsWriterTests
{
    [Fact]
    public void Writes_sorted_aligned_header_and_little_endian_data()
    {
        using var dir = new TempDir();
        var path = dir.Sub("w.safetensors");
        using var b = tensor(new float[] { 1.5f, -2f, 3.25f, 4f, 5f, 6f }, [2, 3]);
        using var a = tensor(new float[] { 7f }, [1]);
        SafetensorsWriter.Write(path, [new("b", b), new("a", a)]);

        var bytes = File.ReadAllBytes(path);
        var headerLength = BinaryPrimitives.ReadInt64LittleEndian(bytes);
        (headerLength % 8).Should().Be(0);
        using var header = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength));
        header.RootElement.EnumerateObject().Select(p => p.Name).Should().Equal("__metadata__", "a", "b");
        var entry = header.RootElement.GetProperty("b");
        entry.GetProperty("dtype").GetString().Should().Be("F32");
        entry.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).Should().Equal(2, 3);
        var offsets = entry.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        offsets.Should().Equal(4, 28);
        var data = 8 + headerLength;
        BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan((int)(data + offsets[0]))).Should().Be(1.5f);
        BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan((int)(data + offsets[0] + 20))).Should().Be(6f);
        bytes.Length.Should().Be((int)(data + 28));
    }

    [Fact]
    public void Keep_stores_each_tensor_in_its_own_dtype_and_reads_back_the_same_type()
    {
        using var dir = new TempDir();
        var path = dir.Sub("k.safetensors");
        using var f = tensor(new float[] { 0.5f, -1f });
        using var l = tensor(new long[] { 7, -8 });
        using var i = tensor(new int[] { 3 });
        using var u = tensor(new byte[] { 1, 255 });
        using var s = tensor(new sbyte[] { -2 });
        SafetensorsWriter.Write(path, [new("f", f), new("l", l), new("i", i), new("u", u), new("s", s)], SafetensorsDType.Keep,
            new Dictionary<string, string>());

        var bytes = File.ReadAllBytes(path);
        using var header = JsonDocument.Parse(bytes.AsMemory(8, (int)BinaryPrimitives.ReadInt64LittleEndian(bytes)));
        header.RootElement.EnumerateObject().Select(p => p.Name).Should().Equal("f", "i", "l", "s", "u"); // empty metadata: left out
        header.RootElement.EnumerateObject().Select(p => p.Value.GetProperty("dtype").GetString()).Should().Equal("F32", "I32", "I64", "I8", "U8");

        var back = SafetensorsFile.Open(path).ReadAll();
        back["f"].data<float>().ToArray().Should().Equal(0.5f, -1f);
        back["l"].data<long>().ToArray().Should().Equal(7L, -8L);
        back["i"].data<int>().ToArray().Should().Equal(3);
        back["u"].data<byte>().ToArray().Should().Equal((byte)1, (byte)255);
        back["s"].data<sbyte>().ToArray().Should().Equal((sbyte)-2);
        foreach (var t in back.Values) t.Dispose();
    }
}
