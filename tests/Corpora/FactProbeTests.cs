using Forgetless.Corpora;

namespace Forgetless.Tests.Corpora;

public sealed class FactProbeTests
{
    // A hand-written slice of WordNet in its own formats. "lemon" has a second (artifact) sense under
    // "car", so "car" must never be offered as a wrong choice for lemon even though it comes from
    // another lexicographer file.
    private const string DataNoun =
        "  1 This is a licence header line.\n" +
        "00000001 03 n 01 entity 0 000 | that which exists\n" +
        "00000010 13 n 01 food 0 001 @ 00000001 n 0000 | what is eaten\n" +
        "00000011 13 n 01 fruit 0 001 @ 00000010 n 0000 | ripe ovary\n" +
        "00000012 13 n 02 citrus 0 citrus_fruit 0 001 @ 00000011 n 0000 | juicy fruit\n" +
        "00000013 13 n 01 lemon 0 001 @ 00000012 n 0000 | yellow fruit\n" +
        "00000014 13 n 01 orange 0 001 @ 00000012 n 0000 | round fruit\n" +
        "00000020 06 n 01 artifact 0 001 @ 00000001 n 0000 | made thing\n" +
        "00000021 06 n 02 car 0 auto 0 001 @ 00000020 n 0000 | motor vehicle\n" +
        "00000022 06 n 01 lemon 1 001 @ 00000021 n 0000 | a bad car\n" +
        "00000023 06 n 01 sedan 0 001 @ 00000021 n 0000 | a closed car\n" +
        "00000024 06 n 01 hammer 0 001 @ 00000025 n 0000 | a hand tool\n" +
        "00000025 06 n 01 tool 0 001 @ 00000020 n 0000 | an implement\n" +
        "00000030 05 n 01 animal 0 001 @ 00000001 n 0000 | a living being\n" +
        "00000031 05 n 01 canine 0 001 @ 00000030 n 0000 | dogs and kin\n" +
        "00000032 05 n 01 dog 0 001 @ 00000031 n 0000 | a canine\n" +
        "00000033 05 n 01 poodle 0 001 @ 00000032 n 0000 | a curly dog\n" +
        "00000040 18 n 01 person 0 001 @ 00000001 n 0000 | a human\n" +
        "00000041 18 n 01 educator 0 001 @ 00000040 n 0000 | one who teaches\n" +
        "00000042 18 n 01 teacher 0 001 @ 00000041 n 0000 | a school educator\n" +
        "00000043 18 n 01 Smith 0 001 @i 00000040 n 0000 | a person called Smith\n" +
        "00000044 18 n 01 pupil 0 001 @ 00000040 n 0000 | a learner\n";

    private const string IndexSense =
        "lemon%1:13:00:: 00000013 1 4\n" +
        "lemon%1:06:01:: 00000022 2 0\n" +
        "orange%1:13:00:: 00000014 1 3\n" +
        "sedan%1:06:00:: 00000023 1 5\n" +
        "hammer%1:06:00:: 00000024 1 7\n" +
        "dog%1:05:00:: 00000032 1 9\n" +
        "poodle%1:05:00:: 00000033 1 3\n" +
        "teacher%1:18:00:: 00000042 1 6\n" +
        "smith%1:18:00:: 00000043 1 8\n" +
        "pupil%1:18:00:: 00000044 1 2\n" +
        "lemon%3:00:00:: 00000099 1 3\n";

    private static List<FactItem> Build()
    {
        var synsets = WordNet.ParseDataNoun(DataNoun);
        var senses = WordNet.ParseIndexSense(IndexSense);
        return new FactProbeBuilder { MaxItems = 100, Seed = 7 }.Build(synsets, senses);
    }

    [Fact]
    public void Parses_words_and_hypernyms()
    {
        var synsets = WordNet.ParseDataNoun(DataNoun);
        synsets["00000012"].Words.Should().Equal("citrus", "citrus_fruit");
        synsets["00000012"].Hypernyms.Should().Equal("00000011");
        synsets["00000043"].InstanceHypernyms.Should().Equal("00000040");
        WordNet.ParseIndexSense(IndexSense).Should().HaveCount(10); // the adjective line is not a noun
    }

    [Fact]
    public void Items_are_frequent_concrete_one_word_classes_with_their_direct_hypernym()
    {
        var items = Build();
        items.Select(i => (i.Word, i.Answer)).Should().Equal(
            ("dog", "canine"), ("hammer", "tool"), ("lemon", "citrus"), ("orange", "citrus"), ("poodle", "dog"), ("sedan", "car"), ("teacher", "educator"));
        // smith: an instance (and capitalised); pupil: tagged only twice.
    }

    [Fact]
    public void Distractors_are_never_ancestors_and_come_from_other_lexicographer_files()
    {
        var synsets = WordNet.ParseDataNoun(DataNoun);
        var senses = WordNet.ParseIndexSense(IndexSense);
        var answerLexFile = new Dictionary<string, int> { ["canine"] = 5, ["dog"] = 5, ["tool"] = 6, ["car"] = 6, ["citrus"] = 13, ["educator"] = 18 };
        foreach (var item in Build())
        {
            item.Choices.Should().HaveCount(4).And.OnlyHaveUniqueItems();
            item.Choices[item.Gold].Should().Be(item.Answer);
            var forbidden = FactProbeBuilder.ForbiddenWords(item.Word, senses.Where(s => s.Lemma == item.Word), synsets);
            var itemLexFile = WordNet.ConcreteLexFiles.First(kv => kv.Value == item.LexFile).Key;
            foreach (var d in item.Choices.Where(c => c != item.Answer))
            {
                forbidden.Should().NotContain(d, $"{d} is an ancestor of {item.Word}");
                answerLexFile[d].Should().NotBe(itemLexFile);
            }
        }
        var lemon = Build().Single(i => i.Word == "lemon");
        lemon.Choices.Should().NotContain("car").And.Contain("citrus");
        FactProbeBuilder.ForbiddenWords("lemon", senses.Where(s => s.Lemma == "lemon"), synsets)
            .Should().Contain(["citrus", "citrus_fruit", "fruit", "food", "car", "auto", "artifact", "entity"]);
    }

    [Fact]
    public void Half_the_items_are_seen_and_only_seen_facts_are_repeated_in_the_text()
    {
        var items = Build();
        items.Count(i => i.Seen).Should().Be(items.Count / 2);
        items.Select(i => i.Category).Distinct().Should().BeEquivalentTo("seen", "unseen");
        var lines = FactProbeBuilder.SeenFactLines(items, repeats: 8, seed: 3);
        lines.Should().HaveCount(8 * items.Count(i => i.Seen));
        foreach (var item in items)
        {
            var mine = lines.Where(l => l.Contains($" {item.Word} ", StringComparison.Ordinal)).ToList();
            if (!item.Seen)
            {
                mine.Should().BeEmpty();
                continue;
            }
            mine.Should().HaveCount(8).And.AllSatisfy(l => l.Should().EndWith($" {item.Answer}."));
            mine.Count(l => l == item.Query + " " + item.Answer + ".").Should().Be(4);
        }
    }

    [Fact]
    public void Articles_and_queries()
    {
        FactProbeBuilder.Query("lemon").Should().Be("A lemon is a kind of");
        FactProbeBuilder.Query("orange").Should().Be("An orange is a kind of");
        FactProbeBuilder.Query("unicorn").Should().Be("A unicorn is a kind of");
        FactProbeBuilder.FactSentence("lemon", "citrus", 1).Should().Be("The lemon is a type of citrus.");
        FactProbeBuilder.FactSentence("apple", "edible", 2).Should().Be("Every apple is an edible.");
    }
}
