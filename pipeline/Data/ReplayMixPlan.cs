namespace Forgetless.Data;

/// <summary>
/// How many times each row of a source is used so that task sources get their weight and replay gets its
/// share of training tokens. Rows are ranked by a seeded hash bucket; a source whose target is t times its
/// tokens uses every row floor(t) times and the lowest buckets once more until the remainder is met. The
/// error is at most one bucket's tokens per source (1/65,536 of a large source, about one row of a small
/// one), and each replay source carries the previous one's rounding forward.
/// </summary>
internal static class ReplayMixPlan
{
    public const int BucketBits = 16;
    public const int Buckets = 1 << BucketBits;

    /// <summary>Selections in the order given: tasks, then generated (when present), then replay sources.</summary>
    public static void Plan(IReadOnlyList<SourceState> sources, double replayShare)
    {
        long taskTokens = 0;
        foreach (var s in sources.Where(s => s.Kind == RowKind.Task))
        {
            s.Selection = Select(s.Histogram, s.AvailableTrainTokens, (long)Math.Round(s.AvailableTrainTokens * s.Weight));
            taskTokens += s.Selection.SelectedTrainTokens;
        }
        var replayTarget = (long)Math.Round(replayShare * taskTokens / (1 - replayShare));
        var replay = sources.Where(s => s.Kind == RowKind.Replay).ToList();
        long replayTaken = 0;
        foreach (var s in sources.Where(s => s.Kind == RowKind.Generated))
        {
            // Generated text is used as it comes; only without other replay sources is it repeated to fill the share.
            var target = replay.Count == 0 ? replayTarget : Math.Min(replayTarget, s.AvailableTrainTokens);
            s.Selection = Select(s.Histogram, s.AvailableTrainTokens, target);
            replayTaken += s.Selection.SelectedTrainTokens;
        }
        var remaining = Math.Max(0, replayTarget - replayTaken);
        var totalWeight = replay.Sum(s => s.Weight);
        double cumulativeWeight = 0;
        long given = 0;
        foreach (var s in replay)
        {
            cumulativeWeight += s.Weight;
            var target = Math.Max(0, (long)Math.Round(remaining * cumulativeWeight / totalWeight) - given);
            if (target > 0 && s.AvailableTrainTokens == 0)
                throw new DataFormatException(s.Path, null,
                    $"replay source '{s.Name}' has no usable rows in the train split after validation, filtering and de-duplication; expected text to replay.");
            s.Selection = Select(s.Histogram, s.AvailableTrainTokens, target);
            given += s.Selection.SelectedTrainTokens;
        }
    }

    public static SourceSelection Select(long[] histogram, long available, long target)
    {
        if (target <= 0 || available <= 0) return new SourceSelection(0, 0, false, 0);
        var full = (int)Math.Min(int.MaxValue, target / available);
        var remainder = target - (long)full * available;
        if (remainder == 0) return new SourceSelection(full, 0, false, target);
        long taken = 0;
        for (var b = 0; b < histogram.Length; b++)
        {
            if (taken + histogram[b] <= remainder)
            {
                taken += histogram[b];
                continue;
            }
            var include = taken + histogram[b] - remainder < remainder - taken;
            if (include) taken += histogram[b];
            return new SourceSelection(full, b, include, (long)full * available + taken);
        }
        return new SourceSelection(full, Buckets, false, (long)full * available + taken);
    }
}

/// <summary>A source's train rows are used <see cref="TrainCopies"/> times; validation rows at most once.</summary>
internal sealed record SourceSelection(int FullCopies, int BoundaryBucket, bool IncludeBoundary, long SelectedTrainTokens)
{
    public int TrainCopies(int bucket) =>
        FullCopies + (bucket < BoundaryBucket || (bucket == BoundaryBucket && IncludeBoundary) ? 1 : 0);

    /// <summary>How many passes over the source the second pass needs.</summary>
    public int Passes => FullCopies + (BoundaryBucket > 0 || IncludeBoundary ? 1 : 0);
}
