using Forgetless.Runs;

namespace Forgetless.Stages.Diagnostics;

/// <summary>
/// Which stages of one invocation ran and which were already up to date, told apart by their stage manifests:
/// a stage that ran (completed, or completed with a failed gate) wrote a new manifest; one that was skipped did not.
/// </summary>
public sealed class StageOutcomes
{
    private readonly string runRoot;
    private readonly IReadOnlyList<string> stages;
    private readonly Dictionary<string, (string Fingerprint, DateTimeOffset Finished)?> before;

    public StageOutcomes(string runRoot, IReadOnlyList<string> stages)
    {
        this.runRoot = runRoot;
        this.stages = stages;
        before = stages.ToDictionary(s => s, Read);
    }

    public string RunRoot => runRoot;

    private (string, DateTimeOffset)? Read(string stage) =>
        StageManifest.TryRead(Path.Combine(runRoot, stage)) is { } m ? (m.Fingerprint, m.Finished) : null;

    /// <summary>The stages with a new manifest, and those whose manifest is unchanged, in pipeline order.</summary>
    public (IReadOnlyList<string> Ran, IReadOnlyList<string> UpToDate) Now()
    {
        var after = stages.ToDictionary(s => s, Read);
        var ran = stages.Where(s => after[s] is not null && !Equals(after[s], before[s])).ToList();
        var upToDate = stages.Where(s => after[s] is not null && Equals(after[s], before[s])).ToList();
        return (ran, upToDate);
    }
}
