using System.Globalization;
using Forgetless.Configuration;
using Forgetless.Evaluation;
using Forgetless.FineTuning;
using Forgetless.Model.Inference;
using Forgetless.Peft;
using Forgetless.Runs;

namespace Forgetless.Stages.Continual;

/// <summary>One suite to score after a step, and the adapter that answers it (null: the base model), named by <paramref name="Model"/>.</summary>
public sealed record ScoreJob(SuiteOptions Suite, string Path, string? Adapter, string Model);

/// <summary>
/// The <c>score</c> stage of a continual step: every task's suite (and the old-knowledge suites) scored with the
/// model of that step — the shared adapter, or per task its own — writing each suite's metrics and the per-item
/// values the accuracy matrix and its bootstrap are built from (<c>scores.json</c>). Cached like any stage: its inputs
/// are the suites, the adapters and the base model.
/// </summary>
public sealed class TaskScoreStage(StageContext context, IReadOnlyList<ScoreJob> jobs, int batchSize) : IStage
{
    public const string FileName = "scores.json";

    public string Name => "score";

    public void DeclareInputs(StageInputs inputs)
    {
        inputs.Directory("run.baseModel", context.BaseModel)
            .Value("config.score", PipelineConfig.Canonical(new { suites = jobs.Select(j => j.Suite).ToList(), batchSize }));
        foreach (var job in jobs)
        {
            inputs.File($"continual.suites.{job.Suite.Name}", job.Path);
            if (job.Adapter is { } adapter) inputs.Directory($"adapter.{job.Suite.Name}", adapter);
        }
    }

    public Task<StageOutcome> RunAsync(StageRun run, CancellationToken cancellationToken) => NativeHeap.RunInMainArena(() =>
    {
        var results = new SortedDictionary<string, SuiteScores>(StringComparer.Ordinal);
        var placement = context.Placement(run.Logger);
        foreach (var group in jobs.GroupBy(j => j.Adapter ?? ""))
        {
            var (model, tokenizer) = StageContext.LoadWithTokenizer(context.BaseModel, "scoring a continual step", placement);
            using (model)
            {
                if (group.Key.Length > 0)
                {
                    AdapterFolder.Apply(model, group.Key);
                    placement.Place(model, model.PrefixKeyValues as TorchSharp.torch.nn.Module);
                }
                model.eval();
                var runner = new SuiteRunner(new Scorer(model, tokenizer, batchSize), new TextGenerator(model, tokenizer), batchSize);
                foreach (var job in group)
                {
                    var result = runner.Run(job.Suite, job.Path, cancellationToken, $"{run.StageName} {job.Suite.Name}");
                    results[job.Suite.Name] = SuiteScores.Of(result, job.Model);
                }
            }
        }
        OutputJson.Write(Path.Combine(run.OutputDirectory, FileName), new StepScores(results));
        return StageOutcome.Done(results.ToDictionary(r => r.Key, r => (object?)r.Value.Metrics.ToDictionary(m => m.Key, m => (object?)m.Value)));
    });
}

/// <summary>scores.json: each suite's metrics and per-item values.</summary>
public sealed record StepScores(SortedDictionary<string, SuiteScores> Suites)
{
    public static StepScores Read(string stageOutput) => OutputJson.Read<StepScores>(Path.Combine(stageOutput, TaskScoreStage.FileName));
}

/// <summary>One suite scored: which model answered it, its metrics, and the per-item values behind them.</summary>
public sealed record SuiteScores(string Model, SortedDictionary<string, double> Metrics, SortedDictionary<string, double[]> Items)
{
    public static SuiteScores Of(SuiteResult result, string model)
    {
        var metrics = new SortedDictionary<string, double>(StringComparer.Ordinal);
        foreach (var m in result.Metrics)
            if (result.Value(m.Name) is var v && double.IsFinite(v)) metrics[m.Name] = Math.Round(v, 6);
        var items = new SortedDictionary<string, double[]>(StringComparer.Ordinal);
        foreach (var key in result.Items.SelectMany(i => i.Values.Keys).Distinct().Where(k => result.Items.All(i => i.Values.ContainsKey(k))))
            items[key] = result.Items.Select(i => i.Values[key]).ToArray();
        return new SuiteScores(model, metrics, items);
    }

    public override string ToString() => string.Join(", ", Metrics.Select(m => $"{m.Key} {m.Value.ToString("0.####", CultureInfo.InvariantCulture)}"));
}
