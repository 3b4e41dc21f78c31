using Forgetless.Model.Tokenizers;

namespace Forgetless.Tokenization;

/// <summary>
/// A trained byte-level BPE vocabulary: ids 0..255 are the bytes (id = byte value), then one id per
/// learned merge in the order learned, then the special tokens.
/// </summary>
public sealed class BpeModel
{
    public BpeModel(IReadOnlyList<string> tokens, IReadOnlyList<(string Left, string Right)> merges, IReadOnlyList<string> specialTokens)
    {
        Tokens = tokens;
        Merges = merges;
        SpecialTokens = specialTokens;
        var ids = new Dictionary<string, int>(tokens.Count, StringComparer.Ordinal);
        for (var i = 0; i < tokens.Count; i++)
        {
            if (!ids.TryAdd(tokens[i], i)) throw new ArgumentException($"Token '{tokens[i]}' appears twice (ids {ids[tokens[i]]} and {i}).", nameof(tokens));
        }
        foreach (var s in specialTokens)
        {
            if (!ids.ContainsKey(s)) throw new ArgumentException($"Special token '{s}' is not in the vocabulary.", nameof(specialTokens));
        }
        TokenIds = ids;
    }

    /// <summary>Token strings in byte-level spelling (special tokens as written), indexed by id.</summary>
    public IReadOnlyList<string> Tokens { get; }

    /// <summary>Merges by rank (rank 0 first), in byte-level spelling.</summary>
    public IReadOnlyList<(string Left, string Right)> Merges { get; }

    public IReadOnlyList<string> SpecialTokens { get; }

    public IReadOnlyDictionary<string, int> TokenIds { get; }

    public int VocabSize => Tokens.Count;

    /// <summary>
    /// The encoder for this vocabulary: the same byte-level BPE engine that loads tokenizer.json, so the
    /// trainer's view of the text and the model's can never disagree. The special tokens serve as bos, eos and pad.
    /// </summary>
    public ByteLevelBpeTokenizer ToTokenizer()
    {
        var vocab = Tokens.Select((t, id) => (t, id)).Where(p => !SpecialTokens.Contains(p.t)).ToDictionary(p => p.t, p => p.id, StringComparer.Ordinal);
        var added = SpecialTokens.Select(s => new AddedToken(TokenIds[s], s, Special: true)).ToList();
        int? special = SpecialTokens.Count > 0 ? TokenIds[SpecialTokens[0]] : null;
        return new ByteLevelBpeTokenizer(vocab, Merges, PreTokenizer.Gpt2, added, new SpecialTokenIds(special, special, special));
    }
}
