using System.Text;

namespace Forgetless.Corpora;

/// <summary>One <c>word/tag</c> token of the tagged Brown corpus.</summary>
public readonly record struct TaggedToken(string Word, string Tag)
{
    /// <summary>The tag without headline/title/cited/foreign marks: <c>nn-tl</c> and <c>fw-nn</c> give <c>nn</c>.</summary>
    public string BaseTag
    {
        get
        {
            var t = Tag.StartsWith("fw-", StringComparison.Ordinal) ? Tag[3..] : Tag;
            var dash = t.IndexOf('-', 1);
            return dash > 0 ? t[..dash] : t;
        }
    }

    public bool IsForeign => Tag.StartsWith("fw-", StringComparison.Ordinal);

    public bool IsHeadline => Tag.Contains("-hl", StringComparison.Ordinal);

    /// <summary>True for tokens that are words (carry a letter or digit), false for punctuation.</summary>
    public bool IsWord => Word.Any(char.IsLetterOrDigit);
}

/// <summary>A Brown file: its id (e.g. <c>ca01</c>), genre from cats.txt, paragraphs of sentences of tokens.</summary>
public sealed record BrownFile(string Id, string Genre, IReadOnlyList<IReadOnlyList<IReadOnlyList<TaggedToken>>> Paragraphs)
{
    public IEnumerable<IReadOnlyList<TaggedToken>> Sentences => Paragraphs.SelectMany(p => p);
}

public static class BrownCorpus
{
    /// <summary>
    /// Parses one tagged sentence. The tag follows the last '/'. In this edition every '?', '!' and ';'
    /// ending a sentence is doubled (<c>?/. ?/.</c>); the repeat is dropped.
    /// </summary>
    public static IReadOnlyList<TaggedToken> ParseSentence(string line)
    {
        var tokens = new List<TaggedToken>();
        foreach (var raw in line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
        {
            var slash = raw.LastIndexOf('/');
            var token = slash <= 0 ? new TaggedToken(raw, "") : new TaggedToken(raw[..slash], raw[(slash + 1)..]);
            if (tokens.Count > 0 && token.Word is "?" or "!" or ";" && tokens[^1].Word == token.Word) continue;
            tokens.Add(token);
        }
        return tokens;
    }

    /// <summary>
    /// Splits a file into paragraphs: a paragraph starts at a tab-indented line or after a blank line;
    /// each non-blank line is one sentence.
    /// </summary>
    public static BrownFile ParseFile(string id, string genre, string text)
    {
        var paragraphs = new List<IReadOnlyList<IReadOnlyList<TaggedToken>>>();
        List<IReadOnlyList<TaggedToken>>? current = null;
        var previousWasHeadline = false;
        foreach (var line in text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n'))
        {
            if (line.Trim().Length == 0)
            {
                current = null;
                continue;
            }
            var sentence = ParseSentence(line);
            if (sentence.Count == 0) continue;
            if (!sentence.Any(t => t.IsWord) && paragraphs.Count > 0)
            {
                // A line of bare punctuation (a closing quote or parenthesis) ends the sentence before it.
                var last = paragraphs[^1];
                ((List<IReadOnlyList<TaggedToken>>)last)[^1] = last[^1].Concat(sentence).ToList();
                continue;
            }
            // Headlines (every word tagged -hl) stand alone, and so does whatever follows them.
            var headline = sentence.Where(t => t.IsWord).All(t => t.IsHeadline);
            if (current is null || line.StartsWith('\t') || headline || previousWasHeadline)
            {
                current = [];
                paragraphs.Add(current);
            }
            current.Add(sentence);
            previousWasHeadline = headline;
        }
        return new BrownFile(id, genre, paragraphs);
    }

    /// <summary>Reads cats.txt: lines <c>ca01 news</c>.</summary>
    public static SortedDictionary<string, string> ParseCategories(string catsTxt)
    {
        var map = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in catsTxt.Split('\n'))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (parts.Length == 2) map[parts[0]] = parts[1];
        }
        return map;
    }

    /// <summary>
    /// Holds out whole files: within each genre, files in sorted order, the one at position
    /// <paramref name="offset"/> and every <paramref name="every"/>-th after it. Doing it per genre puts
    /// at least one file of even the smallest genre (science fiction, 6 files) into the held-out set.
    /// </summary>
    public static bool IsHeldOut(int positionInGenre, int every = 10, int offset = 4) => positionInGenre % every == offset % every;

    public static (List<BrownFile> Train, List<BrownFile> HeldOut) Split(IEnumerable<BrownFile> files, int every = 10, int offset = 4)
    {
        var train = new List<BrownFile>();
        var heldOut = new List<BrownFile>();
        foreach (var genre in files.GroupBy(f => f.Genre).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var position = 0;
            foreach (var f in genre.OrderBy(f => f.Id, StringComparer.Ordinal))
                (IsHeldOut(position++, every, offset) ? heldOut : train).Add(f);
        }
        train.Sort((a, b) => string.CompareOrdinal(a.Id, b.Id));
        heldOut.Sort((a, b) => string.CompareOrdinal(a.Id, b.Id));
        return (train, heldOut);
    }

    /// <summary>One sentence as natural text.</summary>
    public static string SentenceText(IReadOnlyList<TaggedToken> sentence) => new Detokenizer().Join(sentence.Select(t => t.Word).ToList());

    /// <summary>A paragraph as one line of natural text.</summary>
    public static string ParagraphText(IReadOnlyList<IReadOnlyList<TaggedToken>> paragraph)
    {
        var detok = new Detokenizer();
        return string.Join(" ", paragraph.Select(s => detok.Join(s.Select(t => t.Word).ToList())));
    }
}

/// <summary>
/// Turns Brown's tokens back into running text: no space before closing punctuation, `` and ''
/// become a straight double quote attached to the quoted words, ` and ' become a straight single quote.
/// A lone ' is a closing quote before punctuation, an opening one after an opener, and otherwise
/// alternates within the paragraph (one instance per paragraph keeps that state).
/// </summary>
public sealed class Detokenizer
{
    private static readonly HashSet<string> NoSpaceBefore = new(StringComparer.Ordinal) { ",", ".", ";", ":", "?", "!", ")", "]", "}", "''", "%" };
    private static readonly HashSet<string> NoSpaceAfter = new(StringComparer.Ordinal) { "``", "`", "(", "[", "{" };
    private static readonly HashSet<string> Openers = new(StringComparer.Ordinal) { "``", "`", "(", "[", "{", ":", ",", ";", "--" };

    private bool _singleOpen;

    public string Join(IReadOnlyList<string> words)
    {
        var sb = new StringBuilder();
        var glueNext = true;
        for (var i = 0; i < words.Count; i++)
        {
            var w = words[i];
            var prev = i > 0 ? words[i - 1] : null;
            var next = i + 1 < words.Count ? words[i + 1] : null;
            string text;
            bool spaceBefore, glueAfter;
            switch (w)
            {
                case "``":
                    (text, spaceBefore, glueAfter) = ("\"", true, true);
                    break;
                case "''":
                    (text, spaceBefore, glueAfter) = ("\"", false, false);
                    break;
                case "`":
                    (text, spaceBefore, glueAfter) = ("'", true, true);
                    _singleOpen = true;
                    break;
                case "'":
                    var closing = next is null || NoSpaceBefore.Contains(next) || next == "--"
                        ? true
                        : prev is null || Openers.Contains(prev) ? false : _singleOpen;
                    _singleOpen = !closing;
                    (text, spaceBefore, glueAfter) = closing ? ("'", false, false) : ("'", true, true);
                    break;
                case "." when prev is not null && prev.Length > 1 && prev.EndsWith('.'):
                    continue; // "Jr." ending a sentence: one period, not two
                default:
                    text = w;
                    spaceBefore = !NoSpaceBefore.Contains(w);
                    glueAfter = NoSpaceAfter.Contains(w);
                    break;
            }
            if (sb.Length > 0 && spaceBefore && !glueNext) sb.Append(' ');
            sb.Append(text);
            glueNext = glueAfter;
        }
        return sb.ToString();
    }
}
