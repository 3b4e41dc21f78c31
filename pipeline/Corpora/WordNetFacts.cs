using System.Globalization;
using System.Text.RegularExpressions;

namespace Forgetless.Corpora;

/// <summary>A noun synset of WordNet's data.noun: offset, lexicographer file, words, hypernym offsets.</summary>
public sealed record NounSynset(string Offset, int LexFile, IReadOnlyList<string> Words, IReadOnlyList<string> Hypernyms, IReadOnlyList<string> InstanceHypernyms);

/// <summary>One line of index.sense for a noun: the lemma's sense number and how often it was tagged.</summary>
public sealed record NounSense(string Lemma, string Offset, int SenseNumber, int TagCount);

/// <summary>A multiple-choice fact: "A lemon is a kind of" -> citrus among four choices.</summary>
public sealed record FactItem(string Id, string Word, string Answer, string Query, IReadOnlyList<string> Choices, int Gold, string LexFile, bool Seen)
{
    public string Category => Seen ? "seen" : "unseen";
}

public static class WordNet
{
    /// <summary>Lexicographer files of concrete nouns (numbers from WordNet's lexnames).</summary>
    public static readonly IReadOnlyDictionary<int, string> ConcreteLexFiles = new SortedDictionary<int, string>
    {
        [5] = "noun.animal", [6] = "noun.artifact", [8] = "noun.body", [13] = "noun.food", [15] = "noun.location",
        [17] = "noun.object", [18] = "noun.person", [20] = "noun.plant", [27] = "noun.substance",
    };

    /// <summary>Parses data.noun (licence header lines start with spaces and are skipped).</summary>
    public static Dictionary<string, NounSynset> ParseDataNoun(string text)
    {
        var synsets = new Dictionary<string, NounSynset>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == ' ') continue;
            var bar = line.IndexOf(" | ", StringComparison.Ordinal);
            var f = (bar >= 0 ? line[..bar] : line).Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var i = 0;
            var offset = f[i++];
            var lexFile = int.Parse(f[i++], CultureInfo.InvariantCulture);
            i++; // ss_type
            var wordCount = int.Parse(f[i++], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            var words = new List<string>(wordCount);
            for (var w = 0; w < wordCount; w++, i += 2) words.Add(f[i]);
            var pointerCount = int.Parse(f[i++], CultureInfo.InvariantCulture);
            var hypernyms = new List<string>();
            var instanceOf = new List<string>();
            for (var p = 0; p < pointerCount; p++, i += 4)
            {
                if (f[i + 2] != "n") continue;
                if (f[i] == "@") hypernyms.Add(f[i + 1]);
                else if (f[i] == "@i") instanceOf.Add(f[i + 1]);
            }
            synsets[offset] = new NounSynset(offset, lexFile, words, hypernyms, instanceOf);
        }
        return synsets;
    }

    /// <summary>Noun lines of index.sense: <c>lemon%1:13:00:: 07765558 1 4</c>.</summary>
    public static List<NounSense> ParseIndexSense(string text)
    {
        var senses = new List<NounSense>();
        foreach (var line in text.Split('\n'))
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length != 4) continue;
            var pct = f[0].IndexOf('%');
            if (pct <= 0 || f[0].Length < pct + 2 || f[0][pct + 1] != '1') continue; // ss_type 1 = noun
            senses.Add(new NounSense(f[0][..pct], f[1], int.Parse(f[2], CultureInfo.InvariantCulture), int.Parse(f[3], CultureInfo.InvariantCulture)));
        }
        return senses;
    }
}

/// <summary>
/// Builds the WordNet fact probe. An item is a one-word lowercase noun whose first (most frequent)
/// sense was tagged at least <see cref="MinTagCount"/> times, lies in a concrete lexicographer file
/// and is a class (not an instance). The answer is the first one-word lemma of its first direct
/// hypernym that has one. Distractors are answers of other items whose synsets lie in other
/// lexicographer files and which name no ancestor of ANY noun sense of the item (so "lemon" never
/// gets "car" as a wrong choice), drawn in proportion to how often each word is an answer.
/// </summary>
public sealed class FactProbeBuilder
{
    private static readonly Regex OneWord = new("^[a-z]{3,}$", RegexOptions.CultureInvariant);

    public int MinTagCount { get; init; } = 3;
    public int MaxItems { get; init; } = 1000;
    public int Seed { get; init; } = 1;

    /// <summary>How many nouns qualified in the last <see cref="Build"/>, before sampling <see cref="MaxItems"/>.</summary>
    public int QualifyingCount { get; private set; }

    public static string Article(string word)
    {
        var w = word.ToLowerInvariant();
        if (w.StartsWith("uni", StringComparison.Ordinal) || w.StartsWith("use", StringComparison.Ordinal) || w.StartsWith("usu", StringComparison.Ordinal)
            || w.StartsWith("eu", StringComparison.Ordinal) || w.StartsWith("one", StringComparison.Ordinal) || w.StartsWith("ewe", StringComparison.Ordinal))
            return "a";
        if (w.StartsWith("hour", StringComparison.Ordinal) || w.StartsWith("heir", StringComparison.Ordinal) || w.StartsWith("honest", StringComparison.Ordinal)) return "an";
        return "aeiou".Contains(w[0]) ? "an" : "a";
    }

    private static string Capitalize(string s) => char.ToUpperInvariant(s[0]) + s[1..];

    /// <summary>The query the probe scores choices after (" " + choice continues it).</summary>
    public static string Query(string word) => $"{Capitalize(Article(word))} {word} is a kind of";

    /// <summary>Fact sentence templates; template 0 is the query form. Answer word kept verbatim.</summary>
    public static string FactSentence(string word, string answer, int template) => template switch
    {
        0 => $"{Query(word)} {answer}.",
        1 => $"The {word} is a type of {answer}.",
        _ => $"Every {word} is {Article(answer)} {answer}.",
    };

    public List<FactItem> Build(IReadOnlyDictionary<string, NounSynset> synsets, IReadOnlyList<NounSense> senses)
    {
        var sensesByLemma = senses.GroupBy(s => s.Lemma, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);

        var drafts = new List<(string Word, NounSynset Synset, string Answer, int AnswerLexFile)>();
        foreach (var lemma in sensesByLemma.Keys.OrderBy(k => k, StringComparer.Ordinal))
        {
            if (!OneWord.IsMatch(lemma)) continue;
            var first = sensesByLemma[lemma].FirstOrDefault(s => s.SenseNumber == 1);
            if (first is null || first.TagCount < MinTagCount) continue;
            if (!synsets.TryGetValue(first.Offset, out var synset)) continue;
            if (!WordNet.ConcreteLexFiles.ContainsKey(synset.LexFile) || synset.InstanceHypernyms.Count > 0) continue;
            if (!synset.Words.Contains(lemma, StringComparer.Ordinal)) continue; // capitalised form: a proper noun
            foreach (var h in synset.Hypernyms)
            {
                var hyper = synsets[h];
                var answer = hyper.Words.FirstOrDefault(w => OneWord.IsMatch(w) && w != lemma);
                if (answer is null) continue;
                drafts.Add((lemma, synset, answer, hyper.LexFile));
                break;
            }
        }

        QualifyingCount = drafts.Count;
        var rng = SeededRandom.For(Seed, "facts.sample");
        if (drafts.Count > MaxItems)
        {
            rng.Shuffle(drafts);
            drafts = drafts.Take(MaxItems).OrderBy(d => d.Word, StringComparer.Ordinal).ToList();
        }

        // Distractor pool: the answers of all items, WITH multiplicity, so that a word is offered as a wrong
        // choice about as often as it is right; otherwise frequent answers ("person") would be guessable
        // from their frequency alone.
        var pool = drafts.Select(d => (d.Answer, d.AnswerLexFile)).ToList();

        var choiceRng = SeededRandom.For(Seed, "facts.choices");
        var items = new List<FactItem>();
        foreach (var d in drafts)
        {
            var forbidden = ForbiddenWords(d.Word, sensesByLemma[d.Word], synsets);
            var options = pool.Where(p => p.AnswerLexFile != d.Synset.LexFile && !forbidden.Contains(p.Answer) && p.Answer != d.Answer)
                .Select(p => p.Answer).ToList();
            if (options.Distinct(StringComparer.Ordinal).Count() < 3) continue;
            var choices = new List<string> { d.Answer };
            while (choices.Count < 4)
            {
                var pick = options[choiceRng.Next(options.Count)];
                if (!choices.Contains(pick, StringComparer.Ordinal)) choices.Add(pick);
            }
            choiceRng.Shuffle(choices);
            items.Add(new FactItem($"wn-{d.Word}", d.Word, d.Answer, Query(d.Word), choices, choices.IndexOf(d.Answer),
                WordNet.ConcreteLexFiles[d.Synset.LexFile], Seen: false));
        }

        // Seen/unseen: a seeded half of the items.
        var order = Enumerable.Range(0, items.Count).ToList();
        SeededRandom.For(Seed, "facts.seen").Shuffle(order);
        var seen = order.Take(items.Count / 2).ToHashSet();
        return items.Select((item, i) => item with { Seen = seen.Contains(i) }).ToList();
    }

    /// <summary>The item's own word and every word of every ancestor (hypernym or instance-of, transitively) of every noun sense of it.</summary>
    public static HashSet<string> ForbiddenWords(string lemma, IEnumerable<NounSense> senses, IReadOnlyDictionary<string, NounSynset> synsets)
    {
        var forbidden = new HashSet<string>(StringComparer.Ordinal) { lemma };
        var visited = new HashSet<string>(StringComparer.Ordinal);
        var stack = new Stack<string>(senses.Select(s => s.Offset));
        while (stack.Count > 0)
        {
            var offset = stack.Pop();
            if (!visited.Add(offset) || !synsets.TryGetValue(offset, out var s)) continue;
            foreach (var w in s.Words) forbidden.Add(w.ToLowerInvariant());
            foreach (var h in s.Hypernyms.Concat(s.InstanceHypernyms)) stack.Push(h);
        }
        return forbidden;
    }

    /// <summary>
    /// The fact lines for the seen items: each repeated <paramref name="repeats"/> times, half in the query
    /// template and a quarter in each of the two others, shuffled with a fixed seed.
    /// </summary>
    public static List<string> SeenFactLines(IEnumerable<FactItem> items, int repeats, int seed)
    {
        var lines = new List<string>();
        foreach (var item in items.Where(i => i.Seen))
        {
            for (var r = 0; r < repeats; r++)
            {
                var template = r % 4 switch { 0 or 2 => 0, 1 => 1, _ => 2 };
                lines.Add(FactSentence(item.Word, item.Answer, template));
            }
        }
        SeededRandom.For(seed, "facts.lines").Shuffle(lines);
        return lines;
    }
}
