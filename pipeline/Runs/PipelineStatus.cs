namespace Forgetless.Runs;

/// <summary>
/// Status of a whole pipeline: a stage is also stale when a stage it depends on is not up to
/// date, because rerunning that one may change what this one reads.
/// </summary>
public static class PipelineStatus
{
    public static IReadOnlyList<StageStatus> Of(RunStore store, IReadOnlyList<IStage> stagesInOrder)
    {
        var result = new List<StageStatus>();
        var byName = new Dictionary<string, StageStatus>(StringComparer.Ordinal);
        foreach (var stage in stagesInOrder)
        {
            var status = store.Status(stage);
            var inputs = new StageInputs();
            stage.DeclareInputs(inputs);
            var staleUpstream = inputs.Entries
                .Where(e => e.Kind == StageInputKind.Upstream && byName.TryGetValue(e.Source, out var up) && !up.IsUpToDate)
                .Select(e => $"upstream stage '{e.Source}' is not up to date")
                .ToList();
            if (staleUpstream.Count > 0 && status.State == StageState.UpToDate)
                status = status with { State = StageState.Stale, Reasons = staleUpstream };
            byName[stage.Name] = status;
            result.Add(status);
        }
        return result;
    }

    /// <summary>
    /// The stages to run so that <paramref name="target"/> is up to date: the target itself and every
    /// stage it depends on (directly or not) that is not up to date, in pipeline order (like `dvc repro`).
    /// </summary>
    public static IReadOnlyList<IStage> Plan(RunStore store, IReadOnlyList<IStage> stagesInOrder, string target)
    {
        int targetIndex = stagesInOrder.ToList().FindIndex(s => s.Name == target);
        if (targetIndex < 0) throw new ArgumentException($"Unknown stage '{target}'.", nameof(target));
        var statuses = Of(store, stagesInOrder).ToDictionary(s => s.Stage, StringComparer.Ordinal);
        var needed = new HashSet<string>(StringComparer.Ordinal) { target };
        for (int i = targetIndex; i >= 0; i--)
        {
            var stage = stagesInOrder[i];
            if (!needed.Contains(stage.Name)) continue;
            var inputs = new StageInputs();
            stage.DeclareInputs(inputs);
            foreach (var upstream in inputs.Entries.Where(e => e.Kind == StageInputKind.Upstream))
                if (!statuses.TryGetValue(upstream.Source, out var s) || !s.IsUpToDate)
                    needed.Add(upstream.Source);
        }
        return stagesInOrder.Take(targetIndex + 1).Where(s => needed.Contains(s.Name)).ToList();
    }
}
