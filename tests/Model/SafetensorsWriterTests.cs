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
}
