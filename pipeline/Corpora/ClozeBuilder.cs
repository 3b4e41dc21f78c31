using System.Text.RegularExpressions;

namespace Forgetless.Corpora;

/// <summary>One LAMBADA-style item: predict <see cref="Target"/> (" word") after <see cref="Context"/>.</summary>
public sealed record ClozeItem(string Id, string Context, string Target, IReadOnlyList<string> Candidates, string Category)
{
    public int Gold => Candidates.ToList().IndexOf(Target);
}

/// <summary>
/// Builds LAMBADA-style items from held-out Brown. A sentence qualifies when its last word (only
/// closing punctuation may follow) is a noun, proper noun, verb or adjective of 3+ letters, not a
/// stop word, has 6+ words before it in the sentence, and already occurs (same spelling) in the
/// context: up to <see cref="ContextSentences"/> preceding sentences of the same file plus the
/// sentence's own beginning. Candidates are the distinct context words that pass the same
/// word filter, with the target's leading space, in ordinal order.
/// </summary>
public sealed class ClozeBuilder
{
    private static readonly Regex Letters = new("^[A-Za-z]+$", RegexOptions.CultureInvariant);
    private static readonly HashSet<string> ContentTags = new(StringComparer.Ordinal)
    {
        "nn", "nns", "np", "nps", "vb", "vbd", "vbg", "vbn", "vbz", "jj", "jjr", "jjs", "jjt",
    };
    private static readonly HashSet<string> ClosingPunctuation = new(StringComparer.Ordinal) { ".", "?", "!", "''", "'", ")" };

    public int ContextSentences { get; init; } = 4;

    public int MinWordsBefore { get; init; } = 6;

    public static bool IsCandidateWord(string word) =>
        word.Length >= 3 && Letters.IsMatch(word) && !StopWords.Contains(word.ToLowerInvariant());

    /// <summary>The index of the sentence's target token, or -1 when the sentence does not qualify (context aside).</summary>
    public int TargetIndex(IReadOnlyList<TaggedToken> sentence)
    {
        var end = sentence.Count;
        while (end > 0 && ClosingPunctuation.Contains(sentence[end - 1].Word)) end--;
        if (end == sentence.Count || end == 0) return -1; // must end in punctuation and have a word before it
        var i = end - 1;
        var t = sentence[i];
        if (t.IsForeign || t.IsHeadline || t.Tag.Contains('$') || t.Tag.Contains('+')) return -1;
        if (!ContentTags.Contains(t.BaseTag) || !IsCandidateWord(t.Word)) return -1;
        var wordsBefore = 0;
        for (var k = 0; k < i; k++) if (sentence[k].IsWord) wordsBefore++;
        if (wordsBefore < MinWordsBefore) return -1;
        if (!sentence[i - 1].IsWord && sentence[i - 1].Word is not ("," or ";" or ":" or "--")) return -1;
        return i;
    }

    public IEnumerable<ClozeItem> Build(BrownFile file)
    {
        // Sentences of the file in order, remembering where paragraphs start.
        var sentences = new List<(IReadOnlyList<TaggedToken> Tokens, bool StartsParagraph)>();
        foreach (var p in file.Paragraphs)
            for (var s = 0; s < p.Count; s++) sentences.Add((p[s], s == 0));

        for (var si = 0; si < sentences.Count; si++)
        {
            var sentence = sentences[si].Tokens;
            var ti = TargetIndex(sentence);
            if (ti < 0) continue;
            var target = sentence[ti].Word;
            var first = Math.Max(0, si - ContextSentences);
            var contextWords = new List<string>();
            for (var k = first; k < si; k++) contextWords.AddRange(sentences[k].Tokens.Select(t => t.Word));
            contextWords.AddRange(sentence.Take(ti).Select(t => t.Word));
            if (!contextWords.Contains(target, StringComparer.Ordinal)) continue;

            var detok = new Detokenizer();
            var text = new System.Text.StringBuilder();
            for (var k = first; k < si; k++)
            {
                if (text.Length > 0) text.Append(sentences[k].StartsParagraph ? '\n' : ' ');
                text.Append(detok.Join(sentences[k].Tokens.Select(t => t.Word).ToList()));
            }
            if (text.Length > 0) text.Append(sentences[si].StartsParagraph ? '\n' : ' ');
            text.Append(detok.Join(sentence.Take(ti).Select(t => t.Word).ToList()));

            var candidates = contextWords.Where(IsCandidateWord).Distinct(StringComparer.Ordinal)
                .Select(w => " " + w).OrderBy(w => w, StringComparer.Ordinal).ToList();
            yield return new ClozeItem($"{file.Id}-{si:D3}", text.ToString(), " " + target, candidates, file.Genre);
        }
    }

    /// <summary>
    /// Baseline: choose the candidate that occurs most often in the context, the later last occurrence
    /// breaking ties. Returns the fraction of items it gets right and the expected accuracy of a uniform
    /// pick among candidates.
    /// </summary>
    public static (double MostFrequent, double Uniform) Baselines(IReadOnlyList<ClozeItem> items)
    {
        if (items.Count == 0) return (0, 0);
        var right = 0;
        var uniform = 0.0;
        foreach (var item in items)
        {
            var words = Regex.Matches(item.Context, "[A-Za-z]+").Select(m => " " + m.Value).ToList();
            string? best = null;
            (int Count, int Last) bestKey = (-1, -1);
            foreach (var c in item.Candidates)
            {
                var key = (words.Count(w => w == c), words.LastIndexOf(c));
                if (key.CompareTo(bestKey) > 0) (best, bestKey) = (c, key);
            }
            if (best == item.Target) right++;
            uniform += 1.0 / item.Candidates.Count;
        }
        return ((double)right / items.Count, uniform / items.Count);
    }

    /// <summary>Function words never used as targets or candidates (lower case).</summary>
    public static readonly HashSet<string> StopWords = new(StringComparer.Ordinal)
    {
        "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any", "are", "as", "at",
        "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do",
        "does", "doing", "done", "down", "during", "each", "either", "else", "ever", "every", "few", "for", "from", "further",
        "get", "got", "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how",
        "however", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "less", "let", "like", "made", "make", "many",
        "may", "me", "might", "more", "most", "much", "must", "my", "myself", "neither", "never", "no", "nor", "not", "now",
        "of", "off", "often", "on", "once", "one", "only", "or", "other", "others", "our", "ours", "ourselves", "out", "over",
        "own", "per", "perhaps", "quite", "rather", "said", "same", "say", "says", "see", "seem", "seemed", "seems", "shall",
        "she", "should", "since", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then",
        "there", "these", "they", "thing", "things", "this", "those", "though", "through", "thus", "till", "to", "too", "toward",
        "towards", "under", "until", "up", "upon", "us", "very", "was", "way", "we", "well", "were", "what", "whatever", "when",
        "where", "whether", "which", "while", "who", "whom", "whose", "why", "will", "with", "within", "without", "would",
        "yet", "you", "your", "yours", "yourself", "yourselves", "went", "go", "goes", "going", "come", "came", "take", "took",
        "put", "mr", "mrs", "miss", "don", "didn", "isn", "wasn", "aren", "weren", "won", "yes", "oh", "two", "three", "first",
    };
}
