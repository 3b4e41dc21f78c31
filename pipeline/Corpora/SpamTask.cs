using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Forgetless.Corpora;

/// <summary>
/// Spam or ham from the SpamAssassin public corpus (2002): "Spam or ham? Subject: … | …" → " spam" / " ham". The
/// excerpt is the subject and the first words of the body. The mails hold real names and addresses, so only common
/// English survives into the committed text: a word is kept when its lower-case form occurs at least
/// <see cref="MinBrownCount"/> times in Brown and Brown does not mostly tag it as a proper noun; every other word
/// (names, addresses, URLs, numbers, codes) becomes "_". Excerpts that repeat are kept once, and the split is by
/// excerpt, so no excerpt is in both splits.
/// </summary>
public sealed partial class SpamTask
{
    public static readonly string[] Labels = ["ham", "spam"];

    public int MinBrownCount { get; init; } = 10;
    public int BodyWords { get; init; } = 16;
    public int EvalItems { get; init; } = 400;
    public int Seed { get; init; } = 1;

    /// <summary>Lower-case words that may appear in an excerpt.</summary>
    public static HashSet<string> CommonWords(IEnumerable<BrownFile> files, int minCount)
    {
        var counts = new Dictionary<string, (int All, int Proper)>(StringComparer.Ordinal);
        foreach (var t in files.SelectMany(f => f.Sentences).SelectMany(s => s))
        {
            if (!t.Word.All(char.IsLetter)) continue;
            var w = t.Word.ToLowerInvariant();
            var (all, proper) = counts.GetValueOrDefault(w);
            counts[w] = (all + 1, proper + (t.BaseTag.StartsWith("np", StringComparison.Ordinal) ? 1 : 0));
        }
        return counts.Where(kv => kv.Value.All >= minCount && kv.Value.Proper * 2 < kv.Value.All).Select(kv => kv.Key).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>The masked excerpt of one raw RFC-822 mail, or null when nothing common is left of it.</summary>
    public string? Excerpt(string mail, IReadOnlySet<string> common)
    {
        var text = mail.Replace("\r\n", "\n", StringComparison.Ordinal);
        int split = text.IndexOf("\n\n", StringComparison.Ordinal);
        string headers = split < 0 ? text : text[..split], body = split < 0 ? "" : text[(split + 2)..];
        var subject = SubjectLine().Match(headers) is { Success: true } m ? Unfold().Replace(m.Groups[1].Value, " ") : "";
        var bodyWords = new List<string>();
        foreach (var line in body.Split('\n'))
        {
            var l = line.Trim();
            if (l.Length == 0 || l.StartsWith('>') || l.StartsWith("--", StringComparison.Ordinal) || HeaderLike().IsMatch(l)) continue;
            bodyWords.AddRange(Mask(Tags().Replace(l, " "), common));
            if (bodyWords.Count >= BodyWords) break;
        }
        var subjectWords = Mask(EncodedWord().Replace(subject, " "), common);
        if (subjectWords.Concat(bodyWords).All(w => w == "_")) return null;
        return $"Subject: {string.Join(' ', subjectWords)} | {string.Join(' ', Collapse(bodyWords).Take(BodyWords))}";
    }

    /// <summary>Each whitespace-separated piece: a common word (lower-cased, punctuation trimmed) or "_"; runs of "_" are one.</summary>
    public static List<string> Mask(string text, IReadOnlySet<string> common) =>
        Collapse(text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Select(piece =>
        {
            var w = piece.Trim('.', ',', ';', ':', '!', '?', '"', '\'', '(', ')', '[', ']', '*', '-').ToLowerInvariant();
            return w.Length > 0 && w.All(char.IsLetter) && common.Contains(w) ? w : "_";
        }));

    private static List<string> Collapse(IEnumerable<string> words)
    {
        var result = new List<string>();
        foreach (var w in words)
            if (!(w == "_" && result.Count > 0 && result[^1] == "_")) result.Add(w);
        return result;
    }

    public static string Prompt(string excerpt) => $"Spam or ham? {excerpt}";

    /// <summary>The mails of the package's JSON files ({id, group, text}); groups spam-* are spam, the rest ham.</summary>
    public LabelTask Build(IReadOnlyDictionary<string, byte[]> packageFiles, IReadOnlySet<string> common)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var items = new List<LabelItem>();
        foreach (var (name, bytes) in packageFiles.Where(f => f.Key.EndsWith(".json", StringComparison.Ordinal) && f.Key.Count(c => c == '/') == 3).OrderBy(f => f.Key, StringComparer.Ordinal))
        {
            using var doc = JsonDocument.Parse(bytes);
            var root = doc.RootElement;
            string group = root.GetProperty("group").GetString()!, id = root.GetProperty("id").GetString()!;
            if (Excerpt(root.GetProperty("text").GetString()!, common) is not { } excerpt || !seen.Add(excerpt)) continue;
            items.Add(new LabelItem($"{group}-{id}", Prompt(excerpt), group.StartsWith("spam", StringComparison.Ordinal) ? "spam" : "ham"));
        }
        SeededRandom.For(Seed, "spam.split").Shuffle(items);
        return new LabelTask("spam", Labels, items.Skip(EvalItems).ToList(), items.Take(EvalItems).ToList());
    }

    [GeneratedRegex(@"^Subject:[ \t]*(.*(?:\n[ \t].*)*)", RegexOptions.Multiline | RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex SubjectLine();
    [GeneratedRegex(@"\n[ \t]+", RegexOptions.CultureInvariant)]
    private static partial Regex Unfold();
    [GeneratedRegex(@"=\?[^?]+\?[bBqQ]\?[^?]*\?=", RegexOptions.CultureInvariant)]
    private static partial Regex EncodedWord();
    [GeneratedRegex(@"<[^>]*>", RegexOptions.CultureInvariant)]
    private static partial Regex Tags();
    [GeneratedRegex(@"^[A-Za-z-]+:\s", RegexOptions.CultureInvariant)]
    private static partial Regex HeaderLike();
}
