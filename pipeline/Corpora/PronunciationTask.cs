using System.Text.RegularExpressions;

namespace Forgetless.Corpora;

/// <summary>A CMUdict headword (lower case) and its ARPAbet phones, space separated.</summary>
public sealed record Pronunciation(string Word, string Phones)
{
    public string Prompt => $"Pronounce \"{Word}\" in ARPAbet:";

    /// <summary>The continuation of <see cref="Prompt"/>: one space, then the phones.</summary>
    public string Response => " " + Phones;
}

/// <summary>
/// The new task: CMUdict word -> ARPAbet. Only headwords (variants <c>WORD(1)</c> dropped) made of
/// letters and apostrophes that occur at least <see cref="MinBrownCount"/> times in Brown
/// (case-folded); split by word into evaluation and training sets that share no word.
/// </summary>
public sealed class PronunciationTask
{
    private static readonly Regex Headword = new("^[a-z][a-z']*$", RegexOptions.CultureInvariant);

    public int MinBrownCount { get; init; } = 2;
    public int EvalItems { get; init; } = 400;
    public int TrainItems { get; init; } = 9000;
    public int Seed { get; init; } = 1;

    public static SortedDictionary<string, string> ParseDict(string text)
    {
        var dict = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            var sep = line.IndexOf("  ", StringComparison.Ordinal);
            if (sep <= 0) continue;
            var word = line[..sep].ToLowerInvariant();
            if (!Headword.IsMatch(word)) continue; // drops WORD(1) variants and symbol entries
            var phones = string.Join(' ', line[(sep + 2)..].Split(' ', StringSplitOptions.RemoveEmptyEntries));
            if (phones.Length > 0) dict.TryAdd(word, phones);
        }
        return dict;
    }

    /// <summary>Returns (eligible count, train, eval).</summary>
    public (int Eligible, List<Pronunciation> Train, List<Pronunciation> Eval) Build(SortedDictionary<string, string> dict, IReadOnlyDictionary<string, int> brownCounts)
    {
        var eligible = dict.Where(kv => brownCounts.GetValueOrDefault(kv.Key) >= MinBrownCount)
            .Select(kv => new Pronunciation(kv.Key, kv.Value)).ToList();
        SeededRandom.For(Seed, "pronounce.split").Shuffle(eligible);
        var eval = eligible.Take(EvalItems).ToList();
        var train = eligible.Skip(EvalItems).Take(TrainItems).ToList();
        return (eligible.Count, train, eval);
    }

    /// <summary>Case-folded counts of Brown word tokens.</summary>
    public static Dictionary<string, int> CountBrownWords(IEnumerable<BrownFile> files)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var t in files.SelectMany(f => f.Sentences).SelectMany(s => s))
        {
            if (!t.IsWord) continue;
            var w = t.Word.ToLowerInvariant();
            counts[w] = counts.GetValueOrDefault(w) + 1;
        }
        return counts;
    }
}
