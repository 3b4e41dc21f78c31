using Forgetless.Corpora;

namespace Forgetless.Tests.Corpora;

public sealed class ClozeTests
{
    private static readonly ClozeBuilder Builder = new();

    private static int Target(string tagged) => Builder.TargetIndex(BrownCorpus.ParseSentence(tagged));

    [Fact]
    public void Keeps_a_content_word_ending_a_long_enough_sentence()
    {
        Target("The/at man/nn walked/vbd slowly/rb into/in the/at old/jj house/nn ./.").Should().Be(7);
        Target("She/pps told/vbd him/ppo that/cs the/at fish/nn was/bedz tasty/jj ''/'' ./.").Should().Be(7);
    }

    [Theory]
    [InlineData("The/at man/nn walked/vbd into/in the/at house/nn ./.")] // only 5 words before
    [InlineData("The/at man/nn walked/vbd slowly/rb into/in the/at old/jj room/nn and/cc sat/vbd there/rb ./.")] // stop word
    [InlineData("The/at man/nn walked/vbd slowly/rb along/in the/at road/nn of/in the/at Smith's/np$ ./.")] // possessive
    [InlineData("The/at man/nn walked/vbd slowly/rb along/in the/at old/jj road/nn to/in it/ppo ./.")] // pronoun
    [InlineData("The/at man/nn walked/vbd slowly/rb along/in the/at old/jj road/nn")] // no closing punctuation
    [InlineData("The/at man/nn walked/vbd slowly/rb along/in the/at old/jj ox/nn ./.")] // two letters
    [InlineData("The/at man/nn walked/vbd slowly/rb along/in the/at old/jj Strasse/fw-nn ./.")] // foreign
    public void Drops_sentences_that_fail_the_filter(string tagged) => Target(tagged).Should().Be(-1);

    [Fact]
    public void Needs_the_target_in_the_context_and_lists_context_words_as_candidates()
    {
        var text = "\tThe/at house/nn stood/vbd empty/jj ./.\nThe/at man/nn walked/vbd slowly/rb into/in the/at old/jj house/nn ./.\n"
                 + "The/at man/nn walked/vbd slowly/rb along/in the/at dusty/jj road/nn ./.\n";
        var items = Builder.Build(BrownCorpus.ParseFile("cf01", "lore", text)).ToList();
        items.Should().ContainSingle();
        var item = items[0];
        item.Context.Should().Be("The house stood empty. The man walked slowly into the old");
        item.Target.Should().Be(" house");
        item.Candidates.Should().Equal(" empty", " house", " man", " old", " slowly", " stood", " walked");
        item.Candidates[item.Gold].Should().Be(" house");
        item.Category.Should().Be("lore");
    }

    [Fact]
    public void Most_frequent_context_word_baseline()
    {
        var hit = new ClozeItem("a", "the dog saw the dog and a cat", " dog", [" cat", " dog", " saw"], "news");
        var miss = new ClozeItem("b", "the dog saw the dog and a cat", " cat", [" cat", " dog", " saw"], "news");
        var (mostFrequent, uniform) = ClozeBuilder.Baselines([hit, miss]);
        mostFrequent.Should().Be(0.5);
        uniform.Should().BeApproximately(1.0 / 3, 1e-12);
    }
}
