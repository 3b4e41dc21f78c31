using System.IO.Compression;
using System.Text.Json;
using Forgetless.Continual;
using Forgetless.Evaluation;
using Forgetless.Peft;
using Forgetless.Runs;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.Continual;

/// <summary>How well routing picks each input's task, and what the routed answers score.</summary>
/// <param name="Accuracy">Share of held-out inputs routed to their own task's adapter.</param>
/// <param name="PerTask">That share per task.</param>
/// <param name="RoutedScore">Per task, the task metric when each input is answered by the adapter the router chose.</param>
public sealed record RouterResult(double Accuracy, IReadOnlyDictionary<string, double> PerTask, IReadOnlyDictionary<string, double> RoutedScore);

/// <summary>
/// Task isolation after the fact: one adapter per task over the frozen base, chosen at inference by name or by a
/// <see cref="TaskRouter"/>. Scores every task's suite with every task's adapter (a cached <c>score</c> stage in
/// <c>STRATEGY/cross</c>), fits the router on training prompts, routes each held-out input and reports how often the
/// router picks the input's own task and what the routed answers score; writes the adapters as a PEFT multi-adapter
/// folder with the router beside them (<see cref="AdapterSet"/>).
/// </summary>
public sealed class TaskIsolation(ContinualRunner runner, ContinualOptions options, StageContext context, ILogger logger, string toolVersion)
{
    public async Task<RouterResult> EvaluateAsync(StrategyRun run, CancellationToken cancellationToken)
    {
        var tasks = options.Tasks;
        string root = Path.Combine(runner.Root, run.Strategy.Name, "cross");
        var jobs = new List<ScoreJob>();
        for (int j = 0; j < tasks.Count; j++)
            for (int k = 0; k < tasks.Count; k++)
                jobs.Add(new ScoreJob(new SuiteOptions { Name = Cross(tasks[j].Name, tasks[k].Name), Type = SuiteType.MultipleChoice, Role = SuiteRole.New,
                    Path = tasks[j].Suite, Limit = options.SuiteLimit }, context.Resolve(tasks[j].Suite), run.Adapters[k], $"adapter {tasks[k].Name}"));
        var store = new RunStore(root, toolVersion, logger);
        await store.RunAsync(new TaskScoreStage(context, jobs, context.Section<EvaluateOptions>("evaluate").BatchSize), force: false, cancellationToken);
        var cross = StepScores.Read(store.StageDirectory("score"));

        var (model, tokenizer) = StageContext.LoadWithTokenizer(context.BaseModel, "the task router");
        using (model)
        {
            var router = TaskRouter.Fit(model, tokenizer, tasks.Select(t => t.Name).ToList(),
                tasks.Select(t => (IReadOnlyList<string>)Prompts(context.Resolve(t.Train), t.PromptField, options.RouterSamples)).ToList());
            AdapterSet.Write(Path.Combine(runner.Root, run.Strategy.Name, "adapters"), tasks.Select(t => t.Name).ToList(), run.Adapters, router);
            int right = 0, all = 0;
            var perTask = new Dictionary<string, double>(StringComparer.Ordinal);
            var routed = new Dictionary<string, double>(StringComparer.Ordinal);
            for (int j = 0; j < tasks.Count; j++)
            {
                var queries = SuiteFile.Read(context.Resolve(tasks[j].Suite), options.SuiteLimit).Select(r => r.String("query")).ToList();
                var choice = queries.Select(q => router.Route(model, tokenizer, q)).ToList();
                int mine = choice.Count(k => k == j);
                perTask[tasks[j].Name] = (double)mine / queries.Count;
                right += mine;
                all += queries.Count;
                routed[tasks[j].Name] = choice.Select((k, item) => cross.Suites[Cross(tasks[j].Name, tasks[k].Name)].Items[tasks[j].Metric][item]).Average();
            }
            logger.LogInformation("continual {Strategy}: the router sends {Share:P1} of held-out inputs to their own task's adapter", run.Strategy.Name, (double)right / all);
            return new RouterResult((double)right / all, perTask, routed);
        }
    }

    private static string Cross(string task, string adapter) => $"{task}@{adapter}";

    /// <summary>The first <paramref name="count"/> prompts of a task's training rows.</summary>
    public static List<string> Prompts(string path, string field, int count)
    {
        using var file = File.OpenRead(path);
        using var stream = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(file, CompressionMode.Decompress) : (Stream)file;
        using var reader = new StreamReader(stream);
        var prompts = new List<string>();
        while (prompts.Count < count && reader.ReadLine() is { } line)
        {
            if (line.Length == 0) continue;
            using var doc = JsonDocument.Parse(line);
            if (doc.RootElement.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.String) prompts.Add(v.GetString()!);
        }
        if (prompts.Count == 0) throw new InvalidDataException($"{path}: no rows with a string '{field}' to fit the router on");
        return prompts;
    }
}
