using static Forgetless.Tests.Data.PrepareFixture;

namespace Forgetless.Tests.Data;

public sealed class FilteringTests
{
    private const string EvalPassage =
        "the old lighthouse keeper climbed the narrow stairs every night to trim the wick and watch the ships pass the reef";

    [Fact]
    public async Task Decontamination_removes_a_row_sharing_a_13_word_ngram_with_an_eval_item_and_keeps_the_rest()
    {
        using var f = new PrepareFixture();
        var suite = f.WriteLines("suite.jsonl", [
            Json(new Dictionary<string, object?> { ["id"] = "x1", ["context"] = EvalPassage, ["choices"] = new[] { "yes", "no" } }),
        ]);
        var words = EvalPassage.Split(' ');
        var planted = "Story: " + string.Join(' ', words.Skip(3).Take(13)).ToUpperInvariant() + ", she said.";
        var near = "Story: " + string.Join(' ', words.Skip(3).Take(12)) + " banana.";
        var task = f.WriteLines("t.txt", ["an unrelated line about rivers", planted, near, "another harmless sentence"]);
        var options = Options(Source(task));
        options.Decontaminate.Suites = [suite];

        var (stats, output) = await f.RunAsync(options);

        var texts = (await ReadTrainAsync(output)).SelectMany(r => r.Text).ToList();
        texts.Should().BeEquivalentTo("an unrelated line about rivers", near, "another harmless sentence");
        stats.Filtered.Decontaminated.Should().Be(1);
        stats.DecontaminationNgrams.Should().Be(words.Length - 12);
    }

    [Fact]
    public async Task Exact_duplicates_after_case_and_whitespace_normalisation_are_removed_across_sources()
    {
        using var f = new PrepareFixture();
        var a = f.WriteLines("a.txt", ["Hello   World", "unique one", "hello world"]);
        var b = f.WriteLines("b.jsonl", [Json(new Dictionary<string, object?> { ["text"] = " HELLO world " }), Json(new Dictionary<string, object?> { ["text"] = "unique two" })]);

        var (stats, output) = await f.RunAsync(Options(Source(a), Source(b)));

        (await ReadTrainAsync(output)).SelectMany(r => r.Text).Should().BeEquivalentTo("Hello   World", "unique one", "unique two");
        stats.Filtered.Deduplicated.Should().Be(2);
        stats.DedupSetEntries.Should().Be(3);
    }

    [Fact]
    public async Task Dedup_can_be_switched_off()
    {
        using var f = new PrepareFixture();
        var a = f.WriteLines("a.txt", ["same", "same"]);
        var options = Options(Source(a));
        options.Dedup = false;

        var (stats, output) = await f.RunAsync(options);

        (await ReadTrainAsync(output)).SelectMany(r => r.Text).Should().Equal("same", "same");
        stats.Filtered.Deduplicated.Should().Be(0);
    }
}
