using System.Security.Cryptography;
using System.Text.Json;

namespace Forgetless.Tests.Corpora;

/// <summary>Checks the derived files committed under data/ against their manifests and their promised shapes.</summary>
public sealed class CommittedDataTests
{
    private static string Corpora => Path.Combine(RepoData.Root, "data", "corpora");

    [Theory]
    [InlineData("corpora")]
    [InlineData("tokenizer")]
    public void Every_file_in_the_manifest_has_its_checksum(string folder)
    {
        var dir = Path.Combine(RepoData.Root, "data", folder);
        var lines = File.ReadAllLines(Path.Combine(dir, "MANIFEST.sha256"));
        lines.Should().NotBeEmpty();
        foreach (var line in lines)
        {
            var sha = line[..64];
            var name = line[66..];
            Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(dir, name)))).Should().Be(sha, name);
        }
        var listed = lines.Select(l => l[66..]).Append("MANIFEST.sha256").ToHashSet();
        Directory.GetFiles(dir).Select(Path.GetFileName).Should().OnlyContain(n => listed.Contains(n!), "every derived file is listed");
    }

    private static List<JsonElement> Rows(string name) =>
        File.ReadLines(Path.Combine(Corpora, name)).Select(l => JsonDocument.Parse(l).RootElement).ToList();

    [Fact]
    public void Fact_probe_has_four_choices_and_equal_seen_and_unseen_halves()
    {
        var rows = Rows("facts.jsonl");
        rows.Should().HaveCount(1000);
        rows.Should().OnlyContain(r => r.GetProperty("choices").GetArrayLength() == 4 && r.GetProperty("gold").GetInt32() >= 0 && r.GetProperty("gold").GetInt32() < 4);
        rows.Count(r => r.GetProperty("category").GetString() == "seen").Should().Be(500);
    }

    [Fact]
    public void Pronunciation_train_and_eval_share_no_word()
    {
        var train = Rows("pronounce.train.jsonl").Select(r => r.GetProperty("prompt").GetString()).ToHashSet();
        var eval = Rows("pronounce.eval.jsonl").Select(r => r.GetProperty("prompt").GetString()).ToList();
        eval.Should().HaveCountGreaterThan(100).And.OnlyContain(p => !train.Contains(p));
    }

    [Fact]
    public void Cloze_targets_are_among_their_candidates()
    {
        Rows("cloze.jsonl").Should().OnlyContain(r =>
            r.GetProperty("candidates")[r.GetProperty("gold").GetInt32()].GetString() == r.GetProperty("target").GetString());
    }
}
