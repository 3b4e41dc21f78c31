using Forgetless.Model.Tokenizers;
using Forgetless.Tokenization;

namespace Forgetless.Tests.Corpora;

public sealed class BpeTrainerTests
{
    internal static readonly string[] SmallText =
    [
        "The jury said it did find that many of Georgia's registration and election laws are outmoded.",
        "It recommended that Fulton legislators act to have these laws studied and revised.",
        "A lemon is a kind of citrus. The lemon is a type of citrus. Every lemon is a citrus.",
        "Numbers 1961, 3.14 and $1,000 -- also \"quotes\", (brackets) and tabs\there.",
        "Unicode: café, naïve, Straße, 日本語, emoji 🙂 and a soft\u00ADhyphen.",
        "  Leading spaces,   runs   of spaces and a trailing one ",
        "we're they've I'm you'll he'd it's don't",
    ];

    [Fact]
    public void First_merges_follow_pair_frequency()
    {
        // "ab ab ab\n" + "abc\n" -> pieces ab, Ġab x2, abc, Ċ x2: (a,b) occurs 4 times, then (Ġ,ab) twice.
        var counts = BpeTrainer.CountWords(["ab ab ab", "abc"]);
        var model = BpeTrainer.Train(counts, new BpeTrainerOptions { VocabSize = 300 });
        model.Merges.Should().Equal(("a", "b"), ("Ġ", "ab"));
        model.VocabSize.Should().Be(256 + 2 + 1);
        model.Tokens[256].Should().Be("ab");
        model.Tokens[257].Should().Be("Ġab");
        model.Tokens[^1].Should().Be(TokenizerFiles.EndOfText);
    }

    [Fact]
    public void Ties_go_to_the_smallest_pair_of_ids()
    {
        // Every pair occurs once; 'Ġ' is byte 32, so (Ġ,c) beats (a,b) and (c,d).
        var model = BpeTrainer.Train(BpeTrainer.CountWords(["ab cd"]), new BpeTrainerOptions { VocabSize = 259, MinPairFrequency = 1 });
        model.Merges.Should().Equal(("Ġ", "c"), ("a", "b"));
    }

    [Fact]
    public void Incremental_counts_give_the_same_merges_as_recounting()
    {
        var counts = BpeTrainer.CountWords(SmallText);
        var options = new BpeTrainerOptions { VocabSize = 256 + 120 + 1, MinPairFrequency = 2 };
        var model = BpeTrainer.Train(counts, options);
        model.Merges.Should().Equal(NaiveMerges(counts, 120, 2));
    }

    [Fact]
    public void Encoding_round_trips_any_text()
    {
        var model = BpeTrainer.Train(BpeTrainer.CountWords(SmallText), new BpeTrainerOptions { VocabSize = 400 });
        var tokenizer = model.ToTokenizer();
        foreach (var line in SmallText.Append("Unseen: Zürich ☃ <|endoftext|> after the special token\n\n"))
        {
            var ids = tokenizer.Encode(line);
            tokenizer.Decode(ids).Should().Be(line);
        }
        tokenizer.Encode("a<|endoftext|>b").Should().Equal('a', model.VocabSize - 1, 'b');
        tokenizer.Encode("The lemon").Length.Should().BeLessThan("The lemon".Length);
    }

    [Fact]
    public void Vocab_and_merges_files_read_back_to_the_same_model()
    {
        var model = BpeTrainer.Train(BpeTrainer.CountWords(SmallText), new BpeTrainerOptions { VocabSize = 400 });
        var dir = Path.Combine(Path.GetTempPath(), $"fl-bpe-{Guid.NewGuid():N}");
        try
        {
            TokenizerFiles.Write(model, dir);
            var back = TokenizerFiles.Read(dir);
            back.Tokens.Should().Equal(model.Tokens);
            back.Merges.Should().Equal(model.Merges);
            back.SpecialTokens.Should().Equal(TokenizerFiles.EndOfText);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Textbook BPE: recount every pair after every merge.</summary>
    private static List<(string, string)> NaiveMerges(Dictionary<string, long> counts, int maxMerges, int minFrequency)
    {
        var words = counts.Select(kv => (Symbols: ByteLevelAlphabet.Encode(System.Text.Encoding.UTF8.GetBytes(kv.Key)).Select(c => c.ToString()).ToList(), Count: kv.Value)).ToList();
        var ids = Enumerable.Range(0, 256).ToDictionary(b => ByteLevelAlphabet.ToChar((byte)b).ToString(), b => b);
        var merges = new List<(string, string)>();
        while (merges.Count < maxMerges)
        {
            var pairs = new Dictionary<(string, string), long>();
            foreach (var (symbols, count) in words)
                for (var i = 0; i + 1 < symbols.Count; i++) pairs[(symbols[i], symbols[i + 1])] = pairs.GetValueOrDefault((symbols[i], symbols[i + 1])) + count;
            if (pairs.Count == 0) break;
            var best = pairs.OrderByDescending(p => p.Value).ThenBy(p => ids[p.Key.Item1]).ThenBy(p => ids[p.Key.Item2]).First();
            if (best.Value < minFrequency) break;
            var (l, r) = best.Key;
            merges.Add((l, r));
            ids.TryAdd(l + r, ids.Count);
            foreach (var (symbols, _) in words)
            {
                for (var i = 0; i + 1 < symbols.Count; i++)
                {
                    if (symbols[i] == l && symbols[i + 1] == r)
                    {
                        symbols[i] = l + r;
                        symbols.RemoveAt(i + 1);
                    }
                }
            }
        }
        return merges;
    }
}
