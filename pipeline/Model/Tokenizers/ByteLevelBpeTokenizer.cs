using System.Collections.Concurrent;
using System.Text;

namespace Forgetless.Model.Tokenizers;

/// <summary>
/// Byte-level BPE (GPT-2, Llama 3, Qwen2, SmolLM): added tokens are cut out of the text first, the rest is
/// pre-tokenized, each word's UTF-8 bytes are mapped through <see cref="ByteLevelAlphabet"/> and merged by
/// rank. One engine serves both <c>tokenizer.json</c> and <c>vocab.json</c> + <c>merges.txt</c>.
/// </summary>
public sealed class ByteLevelBpeTokenizer : ITokenizer
{
    private const int CacheLimit = 100_000;

    private readonly Dictionary<string, int> vocab;
    private readonly Dictionary<int, string> tokenOfId;
    private readonly Dictionary<(string, string), int> mergeRanks;
    private readonly PreTokenizer preTokenizer;
    private readonly bool ignoreMerges;
    private readonly AddedToken[] addedByLength;
    private readonly HashSet<char> addedFirstChars;
    private readonly Dictionary<int, AddedToken> addedById;
    // Concurrent so that one tokenizer can serve parallel callers (the rest is read-only after construction).
    private readonly ConcurrentDictionary<string, int[]> cache = new(StringComparer.Ordinal);

    public ByteLevelBpeTokenizer(
        IReadOnlyDictionary<string, int> vocab,
        IEnumerable<(string Left, string Right)> merges,
        PreTokenizer preTokenizer,
        IEnumerable<AddedToken>? addedTokens = null,
        SpecialTokenIds? specialTokens = null,
        bool ignoreMerges = false)
    {
        this.vocab = new Dictionary<string, int>(vocab, StringComparer.Ordinal);
        tokenOfId = new Dictionary<int, string>();
        foreach (var (token, id) in vocab) tokenOfId[id] = token;
        mergeRanks = new Dictionary<(string, string), int>();
        var rank = 0;
        foreach (var pair in merges) mergeRanks.TryAdd(pair, rank++);
        this.preTokenizer = preTokenizer;
        this.ignoreMerges = ignoreMerges;
        var added = (addedTokens ?? []).ToArray();
        addedById = added.GroupBy(a => a.Id).ToDictionary(g => g.Key, g => g.Last());
        // Longest first, so that "<|im_start|>" wins over a shorter token that is its prefix.
        addedByLength = added.Where(a => a.Content.Length > 0).OrderByDescending(a => a.Content.Length).ToArray();
        addedFirstChars = addedByLength.Select(a => a.Content[0]).ToHashSet();
        VocabSize = Math.Max(tokenOfId.Keys.DefaultIfEmpty(-1).Max(), addedById.Keys.DefaultIfEmpty(-1).Max()) + 1;
        BosId = specialTokens?.Bos;
        EosId = specialTokens?.Eos;
        PadId = specialTokens?.Pad;
    }

    public int VocabSize { get; }
    public int? BosId { get; }
    public int? EosId { get; }
    public int? PadId { get; }
    public IReadOnlyCollection<AddedToken> AddedTokens => addedById.Values;

    public int? TokenToId(string token) =>
        addedByLength.FirstOrDefault(a => a.Content == token)?.Id ?? (vocab.TryGetValue(token, out var id) ? id : null);

    public int[] Encode(string text)
    {
        var ids = new List<int>();
        var start = 0;
        while (start < text.Length)
        {
            var (at, token) = NextAddedToken(text, start);
            EncodeOrdinary(text[start..at], ids);
            if (token is null) break;
            ids.Add(token.Id);
            start = at + token.Content.Length;
        }
        return ids.ToArray();
    }

    private (int At, AddedToken? Token) NextAddedToken(string text, int start)
    {
        if (addedByLength.Length == 0) return (text.Length, null);
        for (var i = start; i < text.Length; i++)
        {
            if (!addedFirstChars.Contains(text[i])) continue;
            foreach (var a in addedByLength)
                if (string.CompareOrdinal(text, i, a.Content, 0, a.Content.Length) == 0)
                    return (i, a);
        }
        return (text.Length, null);
    }

    private void EncodeOrdinary(string text, List<int> ids)
    {
        if (text.Length == 0) return;
        foreach (var word in preTokenizer.Split(text))
        {
            var mapped = ByteLevelAlphabet.Encode(Encoding.UTF8.GetBytes(word));
            if (!cache.TryGetValue(mapped, out var wordIds))
            {
                wordIds = EncodeWord(mapped);
                if (cache.Count < CacheLimit) cache[mapped] = wordIds;
            }
            ids.AddRange(wordIds);
        }
    }

    private int[] EncodeWord(string word)
    {
        if (ignoreMerges && vocab.TryGetValue(word, out var whole)) return [whole];
        var symbols = word.Select(c => c.ToString()).ToList();
        while (symbols.Count > 1)
        {
            // Merge the lowest-ranked adjacent pair everywhere it occurs, then look again.
            var best = int.MaxValue;
            (string, string) bestPair = default;
            for (var i = 0; i < symbols.Count - 1; i++)
                if (mergeRanks.TryGetValue((symbols[i], symbols[i + 1]), out var r) && r < best)
                    (best, bestPair) = (r, (symbols[i], symbols[i + 1]));
            if (best == int.MaxValue) break;
            var merged = new List<string>(symbols.Count);
            for (var i = 0; i < symbols.Count; i++)
            {
                if (i < symbols.Count - 1 && symbols[i] == bestPair.Item1 && symbols[i + 1] == bestPair.Item2)
                {
                    merged.Add(bestPair.Item1 + bestPair.Item2);
                    i++;
                }
                else
                {
                    merged.Add(symbols[i]);
                }
            }
            symbols = merged;
        }
        return symbols.Select(s => vocab.TryGetValue(s, out var id) ? id
            : throw new InvalidOperationException($"byte-level BPE: symbol '{s}' is not in the vocabulary (incomplete byte alphabet?)")).ToArray();
    }

    public string Decode(IEnumerable<int> ids)
    {
        var text = new StringBuilder();
        var bytes = new List<byte>();
        void Flush()
        {
            text.Append(Encoding.UTF8.GetString(bytes.ToArray()));
            bytes.Clear();
        }
        foreach (var id in ids)
        {
            if (addedById.TryGetValue(id, out var added))
            {
                Flush();
                text.Append(added.Content);
                continue;
            }
            if (!tokenOfId.TryGetValue(id, out var token))
                throw new ArgumentOutOfRangeException(nameof(ids), $"token id {id} is not in the vocabulary (size {VocabSize})");
            foreach (var c in token)
            {
                if (ByteLevelAlphabet.TryToByte(c, out var b)) bytes.Add(b);
                else bytes.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
            }
        }
        Flush();
        return text.ToString();
    }
}

/// <summary>Ids of the special tokens a causal LM needs, resolved from the tokenizer's config files.</summary>
public sealed record SpecialTokenIds(int? Bos, int? Eos, int? Pad);
