namespace Forgetless.Corpora;

/// <summary>
/// Word classes from the tagged Brown corpus: "Word class of "jury" in: The jury said ..." → " noun". The Brown tags
/// are mapped to ten coarse classes after Petrov, Das and McDonald's universal tag set (its Brown mapping; X and
/// punctuation dropped). One asked-about word per sentence, chosen by a seeded draw among the sentence's words whose
/// class is unambiguous within the sentence; training items come from the training files, held-out items from the
/// held-out files (the same split as the held-out perplexity text).
/// </summary>
public sealed class PosTagTask
{
    public static readonly string[] Labels = ["noun", "verb", "adjective", "adverb", "pronoun", "determiner", "preposition", "conjunction", "number", "particle"];

    public int TrainItems { get; init; } = 9000;
    public int EvalItems { get; init; } = 500;
    public int MinWords { get; init; } = 5;
    public int MaxWords { get; init; } = 24;
    public int Seed { get; init; } = 1;

    /// <summary>The coarse class of a Brown tag (without -tl/-hl marks), or null for punctuation, foreign words and the like.</summary>
    public static string? ClassOf(string baseTag)
    {
        if (baseTag.Contains('+') || baseTag.Length == 0) return null; // contractions carry two classes
        string t = baseTag.TrimEnd('*'); // negation mark: "doesn't" is do*
        return t switch
        {
            "jj" or "jjr" or "jjs" or "jjt" => "adjective",
            "in" => "preposition",
            "rb" or "rbr" or "rbt" or "rn" or "wrb" or "ql" or "qlp" => "adverb",
            "cc" or "cs" => "conjunction",
            "at" or "ap" or "abn" or "abx" or "dt" or "dti" or "dts" or "dtx" or "wdt" => "determiner",
            "nn" or "nns" or "nn$" or "nns$" or "np" or "nps" or "np$" or "nps$" or "nr" or "nrs" or "nr$" => "noun",
            "cd" or "od" => "number",
            "pn" or "pn$" or "pp$" or "pp$$" or "ppl" or "ppls" or "ppo" or "pps" or "ppss" or "wp$" or "wpo" or "wps" or "ex" => "pronoun",
            "rp" or "to" => "particle",
            "vb" or "vbd" or "vbg" or "vbn" or "vbz" or "md"
                or "be" or "bed" or "bedz" or "beg" or "bem" or "ben" or "ber" or "bez"
                or "do" or "dod" or "doz" or "hv" or "hvd" or "hvg" or "hvn" or "hvz" => "verb",
            _ => null,
        };
    }

    public static string Prompt(string word, string sentence) => $"{sentence}\nWord class of \"{word}\":";

    public LabelTask Build(IReadOnlyList<BrownFile> train, IReadOnlyList<BrownFile> heldOut) =>
        new("postag", Labels, Items(train, "train", TrainItems), Items(heldOut, "eval", EvalItems));

    private List<LabelItem> Items(IReadOnlyList<BrownFile> files, string split, int count)
    {
        var random = SeededRandom.For(Seed, "postag." + split);
        var items = new List<LabelItem>();
        foreach (var file in files)
        {
            int index = 0;
            foreach (var sentence in file.Sentences)
            {
                index++;
                var words = sentence.Where(t => t.IsWord).ToList();
                if (words.Count < MinWords || words.Count > MaxWords || sentence.Any(t => t.IsHeadline)) continue;
                // A word asked about must have one class wherever it appears in the sentence.
                var candidates = words.Where(t => ClassOf(t.BaseTag) is not null)
                    .GroupBy(t => t.Word).Where(g => g.Select(t => ClassOf(t.BaseTag)).Distinct().Count() == 1)
                    .Select(g => g.First()).ToList();
                if (candidates.Count == 0) continue;
                var chosen = candidates[random.Next(candidates.Count)];
                items.Add(new LabelItem($"{file.Id}-{index}", Prompt(chosen.Word, BrownCorpus.SentenceText(sentence)), ClassOf(chosen.BaseTag)!));
            }
        }
        random.Shuffle(items);
        return items.Take(count).ToList();
    }
}
