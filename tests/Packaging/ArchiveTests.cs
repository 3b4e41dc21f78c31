using System.Formats.Tar;
using System.IO.Compression;
using Forgetless.Packaging;

namespace Forgetless.Tests.Packaging;

/// <summary>Deterministic archives and extraction that cannot be tricked into writing outside its folder.</summary>
public sealed class ArchiveTests
{
    private static string SampleFolder(TempDirectory dir)
    {
        dir.File("pkg/adapter_config.json", "{\"peft_type\": \"LORA\"}\n");
        dir.File("pkg/README.md", "# card\n");
        dir.File("pkg/merged/config.json", "{}\n");
        File.WriteAllBytes(dir.File("pkg/adapter_model.safetensors"), Enumerable.Range(0, 3000).Select(i => (byte)(i * 7)).ToArray());
        return Path.Combine(dir.Path, "pkg");
    }

    [Fact]
    public void Tar_gz_zip_and_nupkg_are_byte_identical_across_writes_and_the_gzip_header_has_no_time_or_name()
    {
        using var dir = new TempDirectory();
        string folder = SampleFolder(dir);
        string a = Path.Combine(dir.Path, "a.tar.gz"), b = Path.Combine(dir.Path, "b.tar.gz");
        DeterministicArchive.WriteTarGz(folder, "pkg", a);
        File.SetLastWriteTimeUtc(Path.Combine(folder, "README.md"), new DateTime(2031, 5, 5, 0, 0, 0, DateTimeKind.Utc)); // mtimes must not matter
        DeterministicArchive.WriteTarGz(folder, "pkg", b);
        File.ReadAllBytes(a).Should().Equal(File.ReadAllBytes(b));

        var bytes = File.ReadAllBytes(a);
        bytes[..4].Should().Equal(0x1f, 0x8b, 8, 0); // deflate, no FNAME/FEXTRA/FCOMMENT flags
        bytes[4..8].Should().Equal(0, 0, 0, 0);      // MTIME 0
        bytes[9].Should().Be(0xff);                  // OS unknown

        // Standard readers see sorted entries, fixed modes, owner 0 and the 1980 timestamp.
        using (var reader = new TarReader(new GZipStream(File.OpenRead(a), CompressionMode.Decompress)))
        {
            var entries = new List<TarEntry>();
            while (reader.GetNextEntry() is { } e) entries.Add(e);
            entries.Select(e => e.Name).Should().Equal("pkg/", "pkg/README.md", "pkg/adapter_config.json", "pkg/adapter_model.safetensors", "pkg/merged/", "pkg/merged/config.json");
            entries.Where(e => e.EntryType == TarEntryType.Directory).Should().OnlyContain(e => (int)e.Mode == 0x1ED);
            entries.Where(e => e.EntryType != TarEntryType.Directory).Should().OnlyContain(e => (int)e.Mode == 0x1A4);
            entries.Should().OnlyContain(e => e.Uid == 0 && e.Gid == 0 && e.ModificationTime == DateTimeOffset.FromUnixTimeSeconds(DeterministicArchive.DefaultEpoch));
            entries.OfType<PosixTarEntry>().Should().OnlyContain(e => e.UserName == "" && e.GroupName == "");
        }

        string za = Path.Combine(dir.Path, "a.zip"), zb = Path.Combine(dir.Path, "b.zip");
        DeterministicArchive.WriteZip(folder, "pkg", za);
        DeterministicArchive.WriteZip(folder, "pkg", zb);
        File.ReadAllBytes(za).Should().Equal(File.ReadAllBytes(zb));

        var options = new PackageOptions { Name = "tiny-adapter", Version = "1.2.3" };
        string na = Path.Combine(dir.Path, "a.nupkg"), nb = Path.Combine(dir.Path, "b.nupkg");
        NugetPackage.Write(na, folder, ["README.md", "adapter_config.json"], options);
        NugetPackage.Write(nb, folder, ["README.md", "adapter_config.json"], options);
        File.ReadAllBytes(na).Should().Equal(File.ReadAllBytes(nb));
        using var nupkg = ZipFile.OpenRead(na);
        nupkg.Entries.Select(e => e.FullName).Should().Contain(["tiny-adapter.nuspec", "contentFiles/any/any/adapters/tiny-adapter/adapter_config.json", "[Content_Types].xml"]);
        using var nuspec = new StreamReader(nupkg.GetEntry("tiny-adapter.nuspec")!.Open());
        nuspec.ReadToEnd().Should().Contain("<version>1.2.3</version>").And.Contain("buildAction=\"None\"").And.Contain("copyToOutput=\"true\"")
            .And.Contain("<license type=\"expression\">Apache-2.0</license>");
    }

    [Fact]
    public void An_archive_extracts_back_to_the_same_files()
    {
        using var dir = new TempDirectory();
        string folder = SampleFolder(dir);
        foreach (var name in new[] { "p.tar.gz", "p.zip" })
        {
            string archive = Path.Combine(dir.Path, name);
            if (name.EndsWith(".zip")) DeterministicArchive.WriteZip(folder, "pkg", archive); else DeterministicArchive.WriteTarGz(folder, "pkg", archive);
            string target = Path.Combine(dir.Path, "out-" + name);
            SafeExtraction.Extract(archive, target);
            PackageComparison.Compare(folder, Path.Combine(target, "pkg")).Should().BeEmpty(name);
        }
    }

    private static string Tar(TempDirectory dir, string name, params TarEntry[] entries)
    {
        string path = Path.Combine(dir.Path, name);
        using (var file = File.Create(path))
        using (var gzip = new GZipStream(file, CompressionLevel.Fastest))
        using (var writer = new TarWriter(gzip, TarEntryFormat.Pax))
            foreach (var e in entries) writer.WriteEntry(e);
        return path;
    }

    private static PaxTarEntry FileEntry(string name) =>
        new(TarEntryType.RegularFile, name) { DataStream = new MemoryStream("evil"u8.ToArray()) };

    [Theory]
    [InlineData("pkg/../../evil.txt", "'..'")]
    [InlineData("../evil.txt", "'..'")]
    [InlineData("/tmp/evil.txt", "absolute path")]
    public void Path_traversal_in_a_tar_is_refused(string entry, string reason)
    {
        using var dir = new TempDirectory();
        string archive = Tar(dir, "evil.tar.gz", FileEntry("pkg/SHA256SUMS"), FileEntry(entry));
        string target = Path.Combine(dir.Path, "out");
        var act = () => SafeExtraction.Extract(archive, target);
        act.Should().Throw<PackageException>().WithMessage($"*'{entry}'*{reason}*refused*");
        File.Exists(Path.Combine(dir.Path, "evil.txt")).Should().BeFalse();
        File.Exists("/tmp/evil.txt").Should().BeFalse();
    }

    [Theory]
    [InlineData(TarEntryType.SymbolicLink, "symbolic")]
    [InlineData(TarEntryType.HardLink, "hard")]
    public void Links_in_a_tar_are_refused(TarEntryType type, string kind)
    {
        using var dir = new TempDirectory();
        string archive = Tar(dir, "link.tar.gz", new PaxTarEntry(type, "pkg/README.md") { LinkName = "/etc/passwd" });
        var act = () => SafeExtraction.Extract(archive, Path.Combine(dir.Path, "out"));
        act.Should().Throw<PackageException>().WithMessage($"*'pkg/README.md' is a {kind} link to '/etc/passwd'*refused*");
    }

    [Fact]
    public void Path_traversal_and_symlinks_in_a_zip_are_refused()
    {
        using var dir = new TempDirectory();
        string traversal = Path.Combine(dir.Path, "evil.zip");
        using (var zip = ZipFile.Open(traversal, ZipArchiveMode.Create))
        using (var w = new StreamWriter(zip.CreateEntry("pkg/../../evil.txt").Open())) w.Write("evil");
        FluentActions.Invoking(() => SafeExtraction.Extract(traversal, Path.Combine(dir.Path, "o1")))
            .Should().Throw<PackageException>().WithMessage("*'pkg/../../evil.txt' contains '..'*");

        string link = Path.Combine(dir.Path, "link.zip");
        using (var zip = ZipFile.Open(link, ZipArchiveMode.Create))
        {
            var e = zip.CreateEntry("pkg/README.md");
            e.ExternalAttributes = unchecked((int)(0xA1FFu << 16));
            using var w = new StreamWriter(e.Open());
            w.Write("/etc/passwd");
        }
        FluentActions.Invoking(() => SafeExtraction.Extract(link, Path.Combine(dir.Path, "o2")))
            .Should().Throw<PackageException>().WithMessage("*'pkg/README.md' is a symbolic link*");
    }

    [Fact]
    public void Sha256sums_is_in_coreutils_format_sorted()
    {
        using var dir = new TempDirectory();
        string folder = SampleFolder(dir);
        Sha256Sums.Write(folder);
        var lines = File.ReadAllText(Path.Combine(folder, Sha256Sums.FileName)).TrimEnd('\n').Split('\n');
        lines.Select(l => l[66..]).Should().Equal("README.md", "adapter_config.json", "adapter_model.safetensors", "merged/config.json");
        lines.Should().OnlyContain(l => l.Length > 66 && l[64] == ' ' && l[65] == ' ');
        lines[0][..64].Should().Be(Forgetless.Runs.FileHashes.Compute(Path.Combine(folder, "README.md")));
        Sha256Sums.Check(folder).Should().BeEmpty();
    }

    [Fact]
    public void Source_revision_is_read_from_a_worktree_git_file_and_packed_refs()
    {
        using var dir = new TempDirectory();
        string commit = "89abcdef0123456789abcdef0123456789abcdef";
        dir.File("repo/.git/HEAD", "ref: refs/heads/main\n");
        dir.File("repo/.git/packed-refs", $"# pack-refs with: peeled fully-peeled sorted\n{commit} refs/heads/main\n");
        Directory.CreateDirectory(Path.Combine(dir.Path, "repo", "src"));
        SourceRevision.Of(Path.Combine(dir.Path, "repo", "src")).Should().Be(commit);

        // A worktree: .git is a file pointing at .git/worktrees/NAME, whose commondir leads back to the shared refs.
        dir.File("repo/.git/worktrees/wt/HEAD", "ref: refs/heads/feature\n");
        dir.File("repo/.git/worktrees/wt/commondir", "../..\n");
        dir.File("repo/.git/refs/heads/feature", "0123456789abcdef0123456789abcdef01234567\n");
        dir.File("wt/.git", $"gitdir: {Path.Combine(dir.Path, "repo", ".git", "worktrees", "wt")}\n");
        SourceRevision.Of(Path.Combine(dir.Path, "wt")).Should().Be("0123456789abcdef0123456789abcdef01234567");

        SourceRevision.Of("/").Should().Be(SourceRevision.Unknown);
    }
}
