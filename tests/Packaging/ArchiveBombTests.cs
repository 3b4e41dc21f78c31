using System.Formats.Tar;
using System.IO.Compression;
using Forgetless.Packaging;

namespace Forgetless.Tests.Packaging;

/// <summary>
/// Issue 20, item 6: a small archive that expands to gigabytes (a "bomb") is refused while it is extracted, before it
/// fills the disk — by a cap on the ratio of extracted to archive bytes and a cap on the total.
/// </summary>
public sealed class ArchiveBombTests
{
    private const long Expanded = 256L << 20; // 256 MiB of zeros: ~250 KB compressed, a ratio of ~1000

    /// <summary>Zeros without allocating them (seekable: TarWriter needs the length up front).</summary>
    private sealed class Zeros(long length) : Stream
    {
        private long position;
        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => length;
        public override long Position { get => position; set => position = value; }
        public override int Read(byte[] buffer, int offset, int count)
        {
            int n = (int)Math.Min(count, length - position);
            Array.Clear(buffer, offset, n);
            position += n;
            return n;
        }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) =>
            position = origin switch { SeekOrigin.Begin => offset, SeekOrigin.Current => position + offset, _ => length + offset };
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private static string TarGzBomb(TempDirectory dir)
    {
        string path = Path.Combine(dir.Path, "bomb.tar.gz");
        using var file = File.Create(path);
        using var gzip = new GZipStream(file, CompressionLevel.Fastest);
        using var tar = new TarWriter(gzip, TarEntryFormat.Pax);
        tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "pkg/adapter_model.safetensors") { DataStream = new Zeros(Expanded) });
        return path;
    }

    private static string ZipBomb(TempDirectory dir)
    {
        string path = Path.Combine(dir.Path, "bomb.zip");
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        using var entry = zip.CreateEntry("pkg/adapter_model.safetensors", CompressionLevel.Fastest).Open();
        new Zeros(Expanded).CopyTo(entry);
        return path;
    }

    private static long BytesUnder(string folder) =>
        Directory.Exists(folder) ? Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length) : 0;

    [Theory]
    [InlineData("tar.gz")]
    [InlineData("zip")]
    public void A_compression_bomb_is_refused_before_it_is_written_out(string kind)
    {
        using var dir = new TempDirectory();
        string archive = kind == "zip" ? ZipBomb(dir) : TarGzBomb(dir);
        string target = Path.Combine(dir.Path, "out");

        var act = () => SafeExtraction.Extract(archive, target);

        act.Should().Throw<PackageException>().Which.Message.Should().Contain("bomb").And.Contain("adapter_model.safetensors");
        BytesUnder(target).Should().BeLessThan(64L << 20, "extraction stops at the cap, long before the 256 MiB the archive holds");
    }

    [Fact]
    public void An_archive_over_the_total_cap_is_refused_even_when_it_compresses_like_weights()
    {
        using var dir = new TempDirectory();
        string source = Path.Combine(dir.Path, "pkg");
        Directory.CreateDirectory(source);
        var random = new Random(5);
        var bytes = new byte[3 << 20];
        random.NextBytes(bytes); // incompressible, like float weights
        File.WriteAllBytes(Path.Combine(source, "adapter_model.safetensors"), bytes);
        string archive = Path.Combine(dir.Path, "big.tar.gz");
        DeterministicArchive.WriteTarGz(source, "pkg", archive);

        var act = () => SafeExtraction.Extract(archive, Path.Combine(dir.Path, "out"), new ExtractionLimits { MaxBytes = 1 << 20 });

        act.Should().Throw<PackageException>().WithMessage("*more than 1 MiB*");
        SafeExtraction.Extract(archive, Path.Combine(dir.Path, "ok"), new ExtractionLimits { MaxBytes = 4 << 20 });
        File.ReadAllBytes(Path.Combine(dir.Path, "ok", "pkg", "adapter_model.safetensors")).Should().Equal(bytes);
    }
}
