using Forgetless.Corpora;

namespace Forgetless.Tests.Corpora;

public sealed class BrownTextTests
{
    private static string Detok(string tagged) => new Detokenizer().Join(BrownCorpus.ParseSentence(tagged).Select(t => t.Word).ToList());

    [Fact]
    public void Double_quotes_hug_the_quoted_words_and_punctuation_has_no_space_before()
    {
        Detok("``/`` Only/rb a/at relative/jj handful/nn ''/'' ,/, the/at jury/nn said/vbd ./.")
            .Should().Be("\"Only a relative handful\", the jury said.");
    }

    [Fact]
    public void Single_quotes_open_after_a_comma_and_close_before_punctuation()
    {
        Detok("He/pps said/vbd ,/, '/' Don't/do* worry/vb '/' ''/'' ./.").Should().Be("He said, 'Don't worry'\".");
        Detok("We/ppss have/hv a/at few/ap '/' consultants/nns '/' left/vbn ./.").Should().Be("We have a few 'consultants' left.");
    }

    [Fact]
    public void Parentheses_semicolons_and_doubled_question_marks()
    {
        Detok("It/pps rained/vbd (/( a/at lot/nn )/) ;/. ;/.").Should().Be("It rained (a lot);");
        Detok("Why/wrb not/* ?/. ?/.").Should().Be("Why not?");
        Detok("He/pps met/vbd Ivan/np Allen/np Jr./np ./.").Should().Be("He met Ivan Allen Jr.");
    }

    [Fact]
    public void Tags_are_split_at_the_last_slash_and_normalised()
    {
        var t = BrownCorpus.ParseSentence("1/2/cd Atlanta's/np$ Grand/jj-tl Amt/fw-nn");
        t.Select(x => x.Word).Should().Equal("1/2", "Atlanta's", "Grand", "Amt");
        t.Select(x => x.BaseTag).Should().Equal("cd", "np$", "jj", "nn");
        t[3].IsForeign.Should().BeTrue();
    }

    [Fact]
    public void Paragraphs_start_at_tabs_blank_lines_and_headlines()
    {
        var text = "\n\n\tThe/at dog/nn ran/vbd ./.\nIt/pps barked/vbd ./.\n\n\nBig/jj-hl news/nn-hl \nMore/ap text/nn ./.\n\n\t``/`` New/jj one/cd ./.\n\n\t''/''\n";
        var file = BrownCorpus.ParseFile("ca01", "news", text);
        file.Paragraphs.Select(BrownCorpus.ParagraphText).Should().Equal("The dog ran. It barked.", "Big news", "More text.", "\"New one.\"");
    }

    [Fact]
    public void Held_out_files_are_chosen_per_genre()
    {
        var files = Enumerable.Range(1, 12).Select(i => new BrownFile($"ca{i:D2}", "news", []))
            .Concat(Enumerable.Range(1, 6).Select(i => new BrownFile($"cm{i:D2}", "science_fiction", []))).ToList();
        var (train, heldOut) = BrownCorpus.Split(files);
        heldOut.Select(f => f.Id).Should().Equal("ca05", "cm05");
        train.Should().HaveCount(16);
    }

    [Fact]
    public void Facts_are_spread_evenly_between_lines()
    {
        CorporaBuilder.Interleave(["a", "b", "c", "d", "e"], ["1", "2"]).Should().Equal("a", "1", "b", "c", "2", "d", "e");
        CorporaBuilder.Interleave(["a"], []).Should().Equal("a");
    }

    [Fact]
    public void Gzip_output_is_stable_and_has_no_timestamp()
    {
        var content = System.Text.Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("The jury said.\n", 200)));
        var a = DerivedFiles.Gzip(content);
        var b = DerivedFiles.Gzip(content);
        a.Should().Equal(b);
        a.Skip(4).Take(4).Should().Equal(0, 0, 0, 0);
        a[9].Should().Be(255);
        var path = Path.Combine(Path.GetTempPath(), $"fl-gz-{Guid.NewGuid():N}.gz");
        try
        {
            File.WriteAllBytes(path, a);
            DerivedFiles.ReadText(path).Should().Be(System.Text.Encoding.UTF8.GetString(content));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
