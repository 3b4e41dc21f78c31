using System.Text;
using Forgetless.Model.Tokenizers;

namespace Forgetless.Tokenization;

/// <summary>
/// Reference encoder for a <see cref="BpeModel"/>: special tokens are cut out first, the rest is
/// split by the GPT-2 pattern, and in each piece the lowest-ranked merge is applied everywhere
/// (left to right) until none applies. This is what Hugging Face's BPE model does with
/// ignore_merges=false, so ids agree with tokenizer.json loaded there.
/// </summary>
public sealed class ByteLevelBpeTokenizer : ITokenizer
{
    private readonly BpeModel _model;
    private readonly Dictionary<long, (int Rank, int Id)> _merges = new();
    private readonly Dictionary<string, int[]> _cache = new(StringComparer.Ordinal);

    public ByteLevelBpeTokenizer(BpeModel model)
    {
        _model = model;
        for (var rank = 0; rank < model.Merges.Count; rank++)
        {
            var (l, r) = model.Merges[rank];
            var key = Pair(model.TokenIds[l], model.TokenIds[r]);
            _merges.TryAdd(key, (rank, model.TokenIds[l + r]));
        }
        var eot = model.TokenIds.TryGetValue(TokenizerFiles.EndOfText, out var id) ? id : (int?)null;
        BosId = EosId = PadId = eot;
    }

    public int VocabSize => _model.VocabSize;
    public int? BosId { get; }
    public int? EosId { get; }
    public int? PadId { get; }

    public int[] Encode(string text)
    {
        var ids = new List<int>();
        var start = 0;
        while (start < text.Length)
        {
            var (at, special) = NextSpecial(text, start);
            var plainEnd = at < 0 ? text.Length : at;
            if (plainEnd > start)
            {
                foreach (var piece in ByteLevel.PreTokenize(text[start..plainEnd])) ids.AddRange(EncodePiece(piece));
            }
            if (at < 0) break;
            ids.Add(_model.TokenIds[special!]);
            start = at + special!.Length;
        }
        return ids.ToArray();
    }

    public string Decode(IEnumerable<int> ids)
    {
        var sb = new StringBuilder();
        var bytes = new StringBuilder();
        foreach (var id in ids)
        {
            var token = _model.Tokens[id];
            if (_model.SpecialTokens.Contains(token))
            {
                sb.Append(ByteLevel.Decode(bytes.ToString()));
                bytes.Clear();
                sb.Append(token);
            }
            else
            {
                bytes.Append(token);
            }
        }
        sb.Append(ByteLevel.Decode(bytes.ToString()));
        return sb.ToString();
    }

    private (int At, string? Special) NextSpecial(string text, int start)
    {
        var best = -1;
        string? which = null;
        foreach (var s in _model.SpecialTokens)
        {
            var i = text.IndexOf(s, start, StringComparison.Ordinal);
            if (i >= 0 && (best < 0 || i < best)) (best, which) = (i, s);
        }
        return (best, which);
    }

    private int[] EncodePiece(string piece)
    {
        if (_cache.TryGetValue(piece, out var cached)) return cached;
        var spelled = ByteLevel.Encode(piece);
        var s = new int[spelled.Length];
        for (var i = 0; i < s.Length; i++) s[i] = _model.TokenIds[spelled[i].ToString()];
        while (s.Length > 1)
        {
            var bestRank = int.MaxValue;
            (int Rank, int Id) best = default;
            var bestLeft = 0;
            var bestRight = 0;
            for (var i = 0; i + 1 < s.Length; i++)
            {
                if (_merges.TryGetValue(Pair(s[i], s[i + 1]), out var m) && m.Rank < bestRank)
                {
                    bestRank = m.Rank;
                    best = m;
                    bestLeft = s[i];
                    bestRight = s[i + 1];
                }
            }
            if (bestRank == int.MaxValue) break;
            s = BpeTrainer.MergeWord(s, bestLeft, bestRight, best.Id);
        }
        if (_cache.Count < 100_000) _cache[piece] = s;
        return s;
    }

    private static long Pair(int left, int right) => ((long)left << 32) | (uint)right;
}
