using Forgetless.Runs;

namespace Forgetless.Tests.Runs;

public sealed class AtomicFileTests : IDisposable
{
    private readonly TempDirectory dir = new();

    public void Dispose() => dir.Dispose();

    [Fact]
    public void A_failed_write_leaves_the_old_file_whole_and_no_temp_file()
    {
        string path = dir.File("model.safetensors", "old bytes");

        var act = () => AtomicFile.Write(path, stream =>
        {
            stream.Write("new by"u8);
            throw new IOException("disk full");
        });

        act.Should().Throw<IOException>();
        File.ReadAllText(path).Should().Be("old bytes");
        Directory.GetFiles(dir.Path).Should().ContainSingle();
    }

    [Fact]
    public void A_completed_write_replaces_the_file()
    {
        string path = dir.File("a.txt", "old");
        AtomicFile.WriteAllText(path, "new");
        File.ReadAllText(path).Should().Be("new");
        Directory.GetFiles(dir.Path).Should().ContainSingle();
    }
}
