using System.Text;
using System.Text.RegularExpressions;

namespace Forgetless.Model.Tokenizers;

/// <summary>
/// Splits text into words before BPE: optional prefix space, then each regex in turn splits every piece
/// into its matches and the gaps between them (HF's "Isolated" behaviour). Unicode normalization (NFC) is
/// applied first when the tokenizer asks for it.
/// </summary>
public sealed class PreTokenizer
{
    /// <summary>GPT-2's split pattern, used by HF's ByteLevel pre-tokenizer when use_regex is true.</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private readonly IReadOnlyList<Regex> splits;

    public PreTokenizer(IEnumerable<string> patterns, bool addPrefixSpace = false, bool nfc = false)
    {
        splits = patterns.Select(p => new Regex(p, RegexOptions.Compiled | RegexOptions.CultureInvariant)).ToArray();
        AddPrefixSpace = addPrefixSpace;
        Nfc = nfc;
    }

    public static PreTokenizer Gpt2 { get; } = new([Gpt2Pattern]);

    public bool AddPrefixSpace { get; }
    public bool Nfc { get; }

    public IEnumerable<string> Split(string text)
    {
        if (Nfc) text = text.Normalize(NormalizationForm.FormC);
        if (AddPrefixSpace && text.Length > 0 && text[0] != ' ') text = " " + text;
        IEnumerable<string> pieces = [text];
        foreach (var regex in splits) pieces = pieces.SelectMany(p => Isolate(regex, p)).ToList();
        return pieces.Where(p => p.Length > 0);
    }

    private static IEnumerable<string> Isolate(Regex regex, string text)
    {
        var last = 0;
        for (var m = regex.Match(text); m.Success; m = m.NextMatch())
        {
            if (m.Length == 0) continue;
            if (m.Index > last) yield return text[last..m.Index];
            yield return m.Value;
            last = m.Index + m.Length;
        }
        if (last < text.Length) yield return text[last..];
    }
}
