using Forgetless.Model.Tokenizers;
namespace Forgetless.Tokenization;

public sealed record BpeTrainerOptions
{
    /// <summary>Final vocabulary size, special tokens included.</summary>
    public int VocabSize { get; init; } = 8192;

    /// <summary>Appended after the learned tokens, in this order (so the first is id VocabSize - count).</summary>
    public IReadOnlyList<string> SpecialTokens { get; init; } = [TokenizerFiles.EndOfText];

    /// <summary>Stop early when the most frequent pair occurs fewer times than this.</summary>
    public int MinPairFrequency { get; init; } = 2;
}

/// <summary>
/// Learns GPT-2 style byte-level BPE merges from word counts. Pair counts are kept incrementally:
/// a merge only revisits the words that contain the merged pair, and a max-heap with lazy
/// re-validation finds the next pair. Ties go to the pair whose (left id, right id) is smallest,
/// so training is fully deterministic.
/// </summary>
public static class BpeTrainer
{
    /// <summary>Counts pre-tokenized pieces of each line (the line's own "\n" included).</summary>
    public static Dictionary<string, long> CountWords(IEnumerable<string> lines)
    {
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var line in lines)
        {
            foreach (var piece in PreTokenizer.Gpt2.Split(line + "\n"))
            {
                counts[piece] = counts.GetValueOrDefault(piece) + 1;
            }
        }
        return counts;
    }

    public static BpeModel Train(IReadOnlyDictionary<string, long> wordCounts, BpeTrainerOptions options, Action<string>? progress = null)
    {
        var target = options.VocabSize - options.SpecialTokens.Count;
        if (target < 256) throw new ArgumentException($"VocabSize {options.VocabSize} leaves no room for the 256 byte tokens.", nameof(options));

        var tokens = new List<string>(options.VocabSize);
        for (var b = 0; b < 256; b++) tokens.Add(ByteLevelAlphabet.ToChar((byte)b).ToString());
        var tokenIds = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < tokens.Count; i++) tokenIds[tokens[i]] = i;

        // Words in ordinal order so that word indices (and hence everything below) do not depend on hashing.
        var keys = wordCounts.Keys.ToArray();
        Array.Sort(keys, StringComparer.Ordinal);
        var words = new int[keys.Length][];
        var freqs = new long[keys.Length];
        for (var w = 0; w < keys.Length; w++)
        {
            var spelled = ByteLevelAlphabet.Encode(System.Text.Encoding.UTF8.GetBytes(keys[w]));
            words[w] = spelled.Select(c => (int)tokenIds[c.ToString()]).ToArray();
            freqs[w] = wordCounts[keys[w]];
        }

        var pairCounts = new Dictionary<long, long>();
        var where = new Dictionary<long, HashSet<int>>();
        for (var w = 0; w < words.Length; w++)
        {
            var s = words[w];
            for (var i = 0; i + 1 < s.Length; i++)
            {
                var p = Pair(s[i], s[i + 1]);
                pairCounts[p] = pairCounts.GetValueOrDefault(p) + freqs[w];
                if (!where.TryGetValue(p, out var set)) where[p] = set = [];
                set.Add(w);
            }
        }

        var heap = new PriorityQueue<long, (long Count, long Pair)>(HeapOrder.Instance);
        foreach (var (p, c) in pairCounts) heap.Enqueue(p, (c, p));

        var merges = new List<(string, string)>();
        var delta = new Dictionary<long, long>();
        while (tokens.Count < target && heap.TryDequeue(out var pair, out var queued))
        {
            var current = pairCounts.GetValueOrDefault(pair);
            if (current != queued.Count)
            {
                // Stale entry: counts of existing pairs only fall, so re-queue with the true count.
                if (current > 0) heap.Enqueue(pair, (current, pair));
                continue;
            }
            if (current < options.MinPairFrequency) break;

            var left = (int)(pair >> 32);
            var right = (int)(pair & 0xFFFFFFFF);
            var merged = tokens[left] + tokens[right];
            if (!tokenIds.TryGetValue(merged, out var newId))
            {
                newId = tokens.Count;
                tokens.Add(merged);
                tokenIds[merged] = newId;
            }
            merges.Add((tokens[left], tokens[right]));

            delta.Clear();
            foreach (var w in where[pair])
            {
                var s = words[w];
                if (!Contains(s, left, right)) continue;
                var f = freqs[w];
                for (var i = 0; i + 1 < s.Length; i++) Add(delta, Pair(s[i], s[i + 1]), -f);
                var next = MergeWord(s, left, right, newId);
                words[w] = next;
                for (var i = 0; i + 1 < next.Length; i++)
                {
                    var p = Pair(next[i], next[i + 1]);
                    Add(delta, p, f);
                    if (next[i] == newId || next[i + 1] == newId)
                    {
                        if (!where.TryGetValue(p, out var set)) where[p] = set = [];
                        set.Add(w);
                    }
                }
            }
            foreach (var (p, d) in delta)
            {
                if (d == 0) continue;
                var c = pairCounts.GetValueOrDefault(p) + d;
                if (c <= 0)
                {
                    pairCounts.Remove(p);
                    where.Remove(p);
                }
                else
                {
                    pairCounts[p] = c;
                    if (d > 0) heap.Enqueue(p, (c, p));
                }
            }
            if (progress is not null && merges.Count % 1000 == 0)
                progress($"bpe: {merges.Count} merges, vocab {tokens.Count}, last pair count {current}");
        }

        foreach (var special in options.SpecialTokens)
        {
            if (tokenIds.ContainsKey(special)) throw new ArgumentException($"Special token '{special}' collides with a learned token.", nameof(options));
            tokens.Add(special);
        }
        return new BpeModel(tokens, merges, options.SpecialTokens);
    }

    private static long Pair(int left, int right) => ((long)left << 32) | (uint)right;

    private static void Add(Dictionary<long, long> d, long key, long value) => d[key] = d.GetValueOrDefault(key) + value;

    private static bool Contains(int[] s, int left, int right)
    {
        for (var i = 0; i + 1 < s.Length; i++)
        {
            if (s[i] == left && s[i + 1] == right) return true;
        }
        return false;
    }

    /// <summary>Replaces each (left, right) occurrence, scanning left to right without overlap.</summary>
    internal static int[] MergeWord(int[] s, int left, int right, int newId)
    {
        var result = new List<int>(s.Length);
        for (var i = 0; i < s.Length; i++)
        {
            if (i + 1 < s.Length && s[i] == left && s[i + 1] == right)
            {
                result.Add(newId);
                i++;
            }
            else
            {
                result.Add(s[i]);
            }
        }
        return result.ToArray();
    }

    /// <summary>Highest count first; among equal counts the smallest (left, right) pair.</summary>
    private sealed class HeapOrder : IComparer<(long Count, long Pair)>
    {
        public static readonly HeapOrder Instance = new();

        public int Compare((long Count, long Pair) x, (long Count, long Pair) y)
        {
            var byCount = y.Count.CompareTo(x.Count);
            return byCount != 0 ? byCount : x.Pair.CompareTo(y.Pair);
        }
    }
}
