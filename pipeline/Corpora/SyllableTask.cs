namespace Forgetless.Corpora;

/// <summary>
/// Syllable counts from CMUdict: "Syllables in "wrecking":" → " 2", the count being the number of vowel phones
/// (those carrying a stress digit). Headwords that occur at least <see cref="MinBrownCount"/> times in Brown, one to
/// five syllables, split by word (no word in both splits).
/// </summary>
public sealed class SyllableTask
{
    public static readonly string[] Labels = ["1", "2", "3", "4", "5"];

    public int MinBrownCount { get; init; } = 2;
    public int TrainItems { get; init; } = 9000;
    public int EvalItems { get; init; } = 500;
    public int Seed { get; init; } = 1;

    public static int Count(string phones) => phones.Split(' ', StringSplitOptions.RemoveEmptyEntries).Count(p => char.IsDigit(p[^1]));

    public static string Prompt(string word) => $"Syllables in \"{word}\":";

    public LabelTask Build(SortedDictionary<string, string> dict, IReadOnlyDictionary<string, int> brownCounts)
    {
        var items = dict.Where(kv => brownCounts.GetValueOrDefault(kv.Key) >= MinBrownCount)
            .Select(kv => (Word: kv.Key, Syllables: Count(kv.Value)))
            .Where(x => x.Syllables is >= 1 and <= 5)
            .Select(x => new LabelItem("cmu-" + x.Word, Prompt(x.Word), x.Syllables.ToString(System.Globalization.CultureInfo.InvariantCulture)))
            .ToList();
        SeededRandom.For(Seed, "syllables.split").Shuffle(items);
        return new LabelTask("syllables", Labels, items.Skip(EvalItems).Take(TrainItems).ToList(), items.Take(EvalItems).ToList());
    }
}
