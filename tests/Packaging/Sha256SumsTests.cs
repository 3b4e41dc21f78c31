using Forgetless.Packaging;

namespace Forgetless.Tests.Packaging;

public sealed class Sha256SumsTests
{
    [Fact]
    public void A_folder_named_with_a_trailing_slash_checks_like_the_folder_and_a_path_out_of_it_is_still_refused()
    {
        using var dir = new TempDirectory();
        dir.File("pkg/adapter/adapter_config.json", "{}");
        dir.File("pkg/README.md", "card");
        string folder = Path.Combine(dir.Path, "pkg");
        Sha256Sums.Write(folder);

        Sha256Sums.Check(folder).Should().BeEmpty();
        Sha256Sums.Check(folder + "/").Should().BeEmpty("shell completion writes pkg/ for the folder pkg");

        // e3b0… is the SHA-256 of no bytes; the entry is refused for where it points, before any hashing.
        File.AppendAllText(Path.Combine(folder, Sha256Sums.FileName), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  ../outside.txt\n");
        dir.File("outside.txt", "");
        Sha256Sums.Check(folder + "/").Should().ContainSingle(p => p == "../outside.txt: listed path leaves the package folder");
    }
}
