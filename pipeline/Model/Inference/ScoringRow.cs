namespace Forgetless.Model.Inference;

/// <summary>
/// One row of a scoring forward pass: a trunk of tokens and, after it, branches that each see the trunk and their own
/// earlier tokens but not the other branches. A context scored with several continuations (the choices of a
/// multiple-choice item, a cloze item's candidates) becomes one row: the context once, then each continuation minus
/// its last token as a branch, numbered on from the end of the context as it would be alone. A plain row is a trunk
/// without branches. <see cref="Scored"/> lists, for each (context, continuation) pair placed here, its index among
/// the pairs and the tokens whose logits predict its continuation's tokens.
/// </summary>
internal sealed class ScoringRow
{
    public required int[] Tokens { get; init; }
    public required int TrunkLength { get; init; }
    /// <summary>(start, length) of each branch in <see cref="Tokens"/>, in order after the trunk.</summary>
    public required IReadOnlyList<(int Start, int Length)> Branches { get; init; }
    public required IReadOnlyList<(int Pair, int[] Predictors)> Scored { get; init; }

    public int Length => Tokens.Length;
    public bool HasBranches => Branches.Count > 0;

    /// <summary>
    /// Fills row <paramref name="row"/> of a [B, W] positions array and a [B, W, W] visibility array: a trunk token sits
    /// at its index and sees the trunk causally; a branch token sits where it would alone (after the trunk) and sees the
    /// trunk and its own branch causally. Padding after the row sees the trunk and itself; its outputs are never read.
    /// </summary>
    public void FillLayout(int row, int width, long[] positions, bool[] visible)
    {
        var branchOf = new int[width];
        var position = new long[width];
        for (int t = 0; t < width; t++) (branchOf[t], position[t]) = (-1 - t, t);
        for (int t = 0; t < TrunkLength; t++) branchOf[t] = -1;
        for (int b = 0; b < Branches.Count; b++)
            for (int t = Branches[b].Start; t < Branches[b].Start + Branches[b].Length; t++)
                (branchOf[t], position[t]) = (b, TrunkLength + t - Branches[b].Start);
        Array.Copy(position, 0, positions, (long)row * width, width);
        for (int q = 0; q < width; q++)
        {
            long offset = ((long)row * width + q) * width;
            for (int key = 0; key <= q; key++)
                visible[offset + key] = key < TrunkLength || branchOf[key] == branchOf[q];
        }
    }

    /// <summary>
    /// Lays out (context, continuation) pairs as rows. Each pair's input is lm-eval's: context and continuation minus
    /// its last token, cut from the left to <paramref name="maxLength"/>; what comes before the continuation is its
    /// trunk. Pairs with the same trunk share rows, as many branches per row as fit in twice <paramref name="maxLength"/>
    /// tokens (positions never pass <paramref name="maxLength"/>: each branch is numbered as it would be alone), when
    /// the trunk is at least as long as the branch: sharing saves the trunk's tokens but costs a row-wide visibility mask
    /// and a wider row, which a short trunk does not pay for (a text's first rolling window shares nothing but the BOS
    /// token with other texts' first windows). A pair alone with its trunk is a plain row. Pairs with nothing to score
    /// get no row.
    /// </summary>
    public static List<ScoringRow> Plan(IReadOnlyList<(int[] Context, int[] Target)> pairs, int maxLength)
    {
        var groups = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        var trunks = new List<(int[] Trunk, List<int> Members)>();
        for (int i = 0; i < pairs.Count; i++)
        {
            var (context, target) = pairs[i];
            if (target.Length == 0) continue;
            if (context.Length == 0) throw new ArgumentException("a continuation needs at least one context token to be predicted from");
            var trunk = context.Length + target.Length - 1 > maxLength ? context[^(maxLength - target.Length + 1)..] : context;
            // A pair whose branch outweighs its trunk gets a group of its own (a plain row).
            string key = trunk.Length >= target.Length - 1 ? string.Join(',', trunk) : "pair " + i;
            if (!groups.TryGetValue(key, out var members))
            {
                groups[key] = members = [];
                trunks.Add((trunk, members));
            }
            members.Add(i);
        }
        var rows = new List<ScoringRow>();
        foreach (var (trunk, members) in trunks)
        {
            var current = new List<int>();
            int length = trunk.Length;
            foreach (var i in members)
            {
                int branch = pairs[i].Target.Length - 1;
                if (current.Count > 0 && length + branch > 2 * maxLength)
                {
                    rows.Add(Row(trunk, current, pairs));
                    current = [];
                    length = trunk.Length;
                }
                current.Add(i);
                length += branch;
            }
            rows.Add(Row(trunk, current, pairs));
        }
        return rows;
    }

    private static ScoringRow Row(int[] trunk, List<int> members, IReadOnlyList<(int[] Context, int[] Target)> pairs)
    {
        var tokens = new List<int>(trunk);
        var branches = new List<(int, int)>();
        var scored = new List<(int, int[])>();
        foreach (var i in members)
        {
            var target = pairs[i].Target;
            int start = tokens.Count;
            tokens.AddRange(target[..^1]);
            // A row with one continuation is a plain sequence: it needs no branch to keep it from others.
            if (target.Length > 1 && members.Count > 1) branches.Add((start, target.Length - 1));
            // Token t predicts token t + 1: the first continuation token is predicted by the trunk's last token, the
            // rest by the continuation's own.
            var predictors = new int[target.Length];
            predictors[0] = trunk.Length - 1;
            for (int j = 1; j < target.Length; j++) predictors[j] = start + j - 1;
            scored.Add((i, predictors));
        }
        return new ScoringRow { Tokens = [.. tokens], TrunkLength = members.Count > 1 ? trunk.Length : tokens.Count, Branches = branches, Scored = scored };
    }
}
