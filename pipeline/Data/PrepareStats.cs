namespace Forgetless.Data;

/// <summary>Contents of stats.json: what was read, filtered and written, per source and kind.</summary>
public sealed class PrepareStats
{
    public double TargetReplayShare { get; set; }

    /// <summary>(replay + generated) / all non-padding tokens of train.parquet.</summary>
    public double AchievedReplayShare { get; set; }

    public SplitStats Train { get; set; } = new();
    public SplitStats Validation { get; set; } = new();

    /// <summary>Keyed by task, replay, generated: train and validation counts.</summary>
    public SortedDictionary<string, KindStats> Kinds { get; set; } = new(StringComparer.Ordinal);

    public List<SourceStats> Sources { get; set; } = [];

    public FilterCounts Filtered { get; set; } = new();

    /// <summary>The first bad rows skipped (file:line: problem), at most 20.</summary>
    public List<string> BadRowExamples { get; set; } = [];

    public int DecontaminationNgrams { get; set; }

    /// <summary>Distinct rows whose hashes the de-duplication set held (about 28 bytes each).</summary>
    public long DedupSetEntries { get; set; }

    public string ToJson() => Runs.OutputJson.Serialize(this);
}

public sealed class SplitStats
{
    public long Sequences { get; set; }
    public long Documents { get; set; }
    /// <summary>Non-padding tokens.</summary>
    public long Tokens { get; set; }
    public long PadTokens { get; set; }
    /// <summary>Tokens that count in the loss.</summary>
    public long TargetTokens { get; set; }

    internal void Add(PreparedSequence s)
    {
        Sequences++;
        Documents += s.Text.Count;
        Tokens += s.Length;
        PadTokens += s.InputIds.Length - s.Length;
        foreach (var m in s.LossMask) if (m) TargetTokens++;
    }
}

public sealed class KindStats
{
    public SplitStats Train { get; set; } = new();
    public SplitStats Validation { get; set; } = new();
}

public sealed class FilterCounts
{
    /// <summary>Bad rows skipped under onBadRow = skip.</summary>
    public long Skipped { get; set; }
    /// <summary>Rows over the sequence length under overLength = drop (or truncated to no loss tokens).</summary>
    public long Dropped { get; set; }
    public long Truncated { get; set; }
    public long Deduplicated { get; set; }
    public long Decontaminated { get; set; }

    internal void Add(FilterCounts other)
    {
        Skipped += other.Skipped;
        Dropped += other.Dropped;
        Truncated += other.Truncated;
        Deduplicated += other.Deduplicated;
        Decontaminated += other.Decontaminated;
    }
}

public sealed class SourceStats
{
    public string Name { get; set; } = "";
    public string Path { get; set; } = "";
    public string Kind { get; set; } = "";
    public string Format { get; set; } = "";
    public double Weight { get; set; }
    public long RowsRead { get; set; }
    public FilterCounts Filtered { get; set; } = new();
    /// <summary>Train-split tokens left after filtering, before weighting or replay sampling.</summary>
    public long AvailableTrainTokens { get; set; }
    /// <summary>Train tokens used / available: 1 = every row once, 0.5 = a seeded half, 2 = every row twice.</summary>
    public double UseFactor { get; set; }
    public SplitStats Train { get; set; } = new();
    public SplitStats Validation { get; set; } = new();
}
