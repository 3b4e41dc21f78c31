using System.Globalization;
using System.IO.Compression;
using Forgetless.Configuration;
using Forgetless.Continual;
using Forgetless.Data;
using Forgetless.Evaluation;
using Forgetless.Runs;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.Continual;

/// <summary>What one strategy did on the sequence.</summary>
/// <param name="Adapters">The adapter each step trained, in task order.</param>
/// <param name="Steps">Each step's scores (every task's suite and the old-knowledge suites).</param>
public sealed record StrategyRun(ContinualStrategy Strategy, IReadOnlyList<string> Adapters, IReadOnlyList<StepScores> Steps, ContinualScores Scores);

/// <summary>
/// Runs a task sequence for each strategy, top to bottom. The untrained model's scores first (run root
/// <c>continual/base</c>); then, per strategy and task i, a step in its own run root (<c>continual/STRATEGY/i-TASK</c>):
/// prepare (task i, with the strategy's replay), finetune (continuing step i − 1's adapter unless tasks are isolated)
/// and score (every task's suite and the old-knowledge suites). Each step is the pipeline's own stages through the run
/// store, so a rerun after a change reruns only the steps the change reaches.
/// </summary>
public sealed class ContinualRunner(PipelineConfig config, ContinualOptions options, ILogger logger, string toolVersion)
{
    private readonly StageContext pipeline = new(config);

    public string Root => Path.Combine(pipeline.RunRoot, "continual");

    /// <summary>The untrained model's scores of every task and old-knowledge suite.</summary>
    public async Task<StepScores> BaseAsync(CancellationToken cancellationToken)
    {
        string root = Path.Combine(Root, "base");
        var context = new StageContext(config.With(StepLayer(root, [], "base")));
        var store = new RunStore(root, toolVersion, logger);
        await store.RunAsync(new TaskScoreStage(context, Jobs(_ => null, "base"), Evaluate.BatchSize), force: false, cancellationToken);
        return StepScores.Read(store.StageDirectory("score"));
    }

    public async Task<StrategyRun> RunAsync(ContinualStrategy strategy, StepScores baseline, CancellationToken cancellationToken)
    {
        var adapters = new List<string>();
        var steps = new List<StepScores>();
        var buffer = strategy.ReplayRows > 0 ? new Reservoir<string>(strategy.ReplayRows, (ulong)pipeline.Seed) : null;
        for (int i = 0; i < options.Tasks.Count; i++)
        {
            var task = options.Tasks[i];
            string root = Path.Combine(Root, strategy.Name, $"{i + 1}-{task.Name}");
            string? previous = i > 0 && strategy.Isolation == Isolation.Shared ? adapters[^1] : null;
            string? bufferFile = buffer is { Items.Count: > 0 } ? WriteBuffer(buffer, Path.Combine(Root, strategy.Name, $"buffer-before-{i + 1}.jsonl")) : null;
            logger.LogInformation("continual {Strategy}: step {Step}/{Count}, task {Task}{From}", strategy.Name, i + 1, options.Tasks.Count, task.Name,
                previous is null ? " (from the base model)" : " (continuing the previous step's adapter)");

            var step = config.With([.. Settings(options.Settings, "continual.settings"), .. Settings(strategy.Settings, $"continual.strategies.{strategy.Name}"),
                                    .. StepLayer(root, [task], $"continual step {i + 1}", previous, bufferFile, strategy)]);
            var context = new StageContext(step);
            var store = new RunStore(root, toolVersion, logger);
            foreach (var stage in StageRegistry.Build(context).Where(s => s.Name is "prepare" or "finetune"))
                await store.RunAsync(stage, force: false, cancellationToken);
            string adapter = Path.Combine(store.StageDirectory("finetune"), "adapter");
            adapters.Add(adapter);

            // Which model answers each task after this step: the one adapter, or with isolation each trained task its own.
            string? AdapterFor(int j) => strategy.Isolation == Isolation.Shared ? adapter : j <= i ? adapters[j] : null;
            await store.RunAsync(new TaskScoreStage(context, Jobs(AdapterFor, $"step {i + 1}"), Evaluate.BatchSize), force: false, cancellationToken);
            steps.Add(StepScores.Read(store.StageDirectory("score")));
            buffer?.OfferAll(ReadLines(Resolve(task.Train)).Select(line => AsPromptResponse(line, task)));
        }
        return new StrategyRun(strategy, adapters, steps, Scores(baseline, steps));
    }

    private EvaluateOptions Evaluate => config.Section<EvaluateOptions>("evaluate");

    private string Resolve(string path) => config.ResolvePath(path);

    /// <summary>The accuracy matrix's item scores: every task's metric per item, before training and after each step.</summary>
    public ContinualScores Scores(StepScores baseline, IReadOnlyList<StepScores> steps) => new(
        options.Tasks.Select(t => t.Name).ToList(),
        options.Tasks.Select(t => new[] { baseline }.Concat(steps).Select(s => ItemsOf(s, t)).ToArray()).ToArray());

    private static double[] ItemsOf(StepScores scores, ContinualTask task) =>
        scores.Suites.TryGetValue(task.Name, out var suite) && suite.Items.TryGetValue(task.Metric, out var items) ? items
            : throw new InvalidDataException($"continual: the scores have no per-item '{task.Metric}' for task {task.Name}");

    /// <summary>Every task suite (answered by <paramref name="adapterFor"/>(task index)) and every old-knowledge suite (by the last task's).</summary>
    private IReadOnlyList<ScoreJob> Jobs(Func<int, string?> adapterFor, string model)
    {
        var jobs = new List<ScoreJob>();
        for (int j = 0; j < options.Tasks.Count; j++)
        {
            var task = options.Tasks[j];
            string? adapter = adapterFor(j);
            jobs.Add(new ScoreJob(new SuiteOptions { Name = task.Name, Type = SuiteType.MultipleChoice, Role = SuiteRole.New, Path = task.Suite, Limit = options.SuiteLimit },
                Resolve(task.Suite), adapter, adapter is null ? "base" : model));
        }
        string? last = adapterFor(options.Tasks.Count - 1) ?? Enumerable.Range(0, options.Tasks.Count).Select(adapterFor).LastOrDefault(a => a is not null);
        foreach (var name in options.OldSuites)
        {
            var suite = Evaluate.Suites.FirstOrDefault(s => s.Name == name)
                ?? throw new ConfigException($"continual.oldSuites: '{name}' is not one of evaluate.suites ({string.Join(", ", Evaluate.Suites.Select(s => s.Name))})");
            jobs.Add(new ScoreJob(suite, Resolve(suite.Path), last, last is null ? "base" : model));
        }
        return jobs;
    }

    private static IEnumerable<ConfigSetting> Settings(IEnumerable<string> settings, string what) => PipelineConfig.ParseOverrides(settings, what);

    /// <summary>
    /// The settings of one step: its run root, its task as the only task source, replay (the pipeline's replay sources,
    /// plus the strategy's buffer of earlier tasks), every task's suite kept out of the training rows, the adapter it
    /// continues, and no distill stage.
    /// </summary>
    private IEnumerable<ConfigSetting> StepLayer(string root, IReadOnlyList<ContinualTask> tasks, string origin, string? previous = null,
        string? bufferFile = null, ContinualStrategy? strategy = null)
    {
        var prepare = config.Section<PrepareOptions>("prepare");
        yield return new ConfigSetting("run:root", root, origin);
        yield return new ConfigSetting("distill:enabled", "false", origin);
        if (tasks.Count > 0)
            foreach (var s in ConfigLayers.ListOf("prepare:taskSources", tasks.Select(t => (IReadOnlyDictionary<string, string>)new Dictionary<string, string>
                     {
                         ["path"] = t.Train, ["name"] = t.Name, ["promptField"] = t.PromptField, ["responseField"] = t.ResponseField,
                     }).ToList(), origin))
                yield return s;
        if (bufferFile is not null && strategy is not null)
        {
            // The buffer takes its share of the replay tokens; the pipeline's replay sources keep theirs in proportion.
            double others = prepare.ReplaySources.Sum(r => r.Weight);
            var replay = prepare.ReplaySources.Select(r => (IReadOnlyDictionary<string, string>)SourceFields(r, others > 0 ? (1 - strategy.ReplayBufferShare) * r.Weight / others : 0))
                .Where(r => double.Parse(r["weight"], CultureInfo.InvariantCulture) > 0)
                .Append(new Dictionary<string, string>
                {
                    ["path"] = bufferFile, ["name"] = "earlier-tasks", ["promptField"] = "prompt", ["responseField"] = "response",
                    ["weight"] = (others > 0 ? strategy.ReplayBufferShare : 1).ToString("R", CultureInfo.InvariantCulture),
                }).ToList();
            foreach (var s in ConfigLayers.ListOf("prepare:replaySources", replay, origin)) yield return s;
        }
        foreach (var s in ConfigLayers.ListOf("prepare:decontaminate:suites", prepare.Decontaminate.Suites.Concat(options.Tasks.Select(t => t.Suite)).Distinct().ToList(), origin))
            yield return s;
        if (previous is not null)
        {
            yield return new ConfigSetting("finetune:initAdapter", previous, origin);
            if (strategy?.TeacherIsPrevious == true) yield return new ConfigSetting("finetune:kd:teacherAdapter", previous, origin);
        }
    }

    /// <summary>A replay source as config fields, with a new weight.</summary>
    private static Dictionary<string, string> SourceFields(DataSourceOptions source, double weight)
    {
        var fields = new Dictionary<string, string>
        {
            ["path"] = source.Path, ["format"] = source.Format.ToString(), ["weight"] = weight.ToString("R", CultureInfo.InvariantCulture),
        };
        if (source.Name is { } name) fields["name"] = name;
        if (source.PromptField is { } p) fields["promptField"] = p;
        if (source.ResponseField is { } r) fields["responseField"] = r;
        if (source.TextField is { } t) fields["textField"] = t;
        return fields;
    }

    /// <summary>The buffer as JSON lines (written only when it changed, so an unchanged buffer keeps the next step cached).</summary>
    private static string WriteBuffer(Reservoir<string> buffer, string path)
    {
        string text = string.Join("\n", buffer.Items) + "\n";
        if (!File.Exists(path) || File.ReadAllText(path) != text) AtomicFile.WriteAllText(path, text);
        return path;
    }

    /// <summary>A task row as the buffer keeps it: <c>{"prompt", "response"}</c>, whatever the task's field names.</summary>
    private static string AsPromptResponse(string line, ContinualTask task)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(line);
        string Field(string name) => doc.RootElement.TryGetProperty(name, out var v) && v.ValueKind == System.Text.Json.JsonValueKind.String ? v.GetString()!
            : throw new InvalidDataException($"{task.Train}: a row has no string field '{name}'");
        return System.Text.Json.JsonSerializer.Serialize(new { prompt = Field(task.PromptField), response = Field(task.ResponseField) });
    }

    private static IEnumerable<string> ReadLines(string path)
    {
        using var file = File.OpenRead(path);
        using var stream = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(file, CompressionMode.Decompress) : (Stream)file;
        using var reader = new StreamReader(stream);
        while (reader.ReadLine() is { } line)
            if (line.Length > 0) yield return line;
    }
}
