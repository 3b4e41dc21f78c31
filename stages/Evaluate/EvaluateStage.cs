using Forgetless.Evaluation;
using Forgetless.Model;
using Forgetless.Peft;
using Forgetless.Runs;

namespace Forgetless.Stages.Evaluate;

/// <summary>
/// The evaluate stage, the release gate: scores every suite on the base model and on base + the
/// candidate adapter, compares them item by item, judges the gates and writes results.json,
/// junit.xml, report.md and report.html. A failed gate completes the stage (outputs are published)
/// with <see cref="StageOutcome.Failure"/> set, which the host turns into exit code 4.
/// </summary>
/// <param name="candidateStage">Upstream stage whose <c>adapter/</c> is the candidate; null when <paramref name="adapterFolder"/> is given.</param>
/// <param name="adapterFolder">An explicit adapter folder (standalone use); declared as a folder input.</param>
/// <param name="cacheRoot">The run root: base item scores are cached under its <c>.cache/evaluate/</c>.</param>
public sealed class EvaluateStage(
    EvaluateOptions options,
    string baseModel,
    string baseDirectory,
    string cacheRoot,
    int seed,
    string? candidateStage,
    string? adapterFolder,
    string toolVersion) : IStage
{
    public const string AdapterSubfolder = "adapter";
    public const string MetricsFile = "metrics.jsonl";

    public string Name => "evaluate";

    public void DeclareInputs(StageInputs inputs)
    {
        inputs.Value("evaluate.options", options.ToJson());
        inputs.Value("run.seed", seed.ToString(System.Globalization.CultureInfo.InvariantCulture));
        inputs.Directory("baseModel", baseModel);
        foreach (var suite in options.Suites)
            inputs.File($"evaluate.suites.{suite.Name}", Path.GetFullPath(suite.Path, baseDirectory));
        if (adapterFolder is not null) inputs.Directory("evaluate.adapter", adapterFolder);
        else if (candidateStage is not null) inputs.Upstream(candidateStage);
    }

    public async Task<StageOutcome> RunAsync(StageRun run, CancellationToken cancellationToken)
    {
        var (adapter, metrics) = Candidate(run);
        string cacheDirectory = Path.Combine(cacheRoot, ".cache", "evaluate");
        var evaluation = new ForgettingEvaluation
        {
            Options = options,
            BaseDirectory = baseDirectory,
            LoadBase = () =>
            {
                var loaded = ModelFolder.Load(baseModel);
                if (loaded.Tokenizer is null)
                {
                    loaded.Model.Dispose();
                    throw new UserInputException($"{baseModel}: the base model folder has no tokenizer files; evaluate needs one to score text");
                }
                return (loaded.Model, loaded.Tokenizer);
            },
            ApplyCandidate = model => AdapterFolder.Apply(model, adapter),
            BaseFingerprint = FolderDigest(baseModel, new FileHashes(Path.Combine(cacheDirectory, "file-hashes.json"))),
            CacheDirectory = cacheDirectory,
            Seed = seed,
            MetricsJsonl = metrics,
            Logger = run.Logger,
            Config = new Dictionary<string, object?>
            {
                ["baseModel"] = baseModel,
                ["adapter"] = adapter,
                ["candidate"] = candidateStage is not null ? $"stage {candidateStage}" : "adapter folder",
                ["seed"] = options.Seed ?? seed,
                ["batchSize"] = options.BatchSize,
                ["device"] = "cpu",
                ["fingerprint"] = run.Fingerprint,
            },
        };
        var result = await Task.Run(() => evaluation.Run(cancellationToken), cancellationToken);
        EvaluationReports.WriteAll(result, run.OutputDirectory, toolVersion);

        var numbers = new Dictionary<string, object?>
        {
            ["passed"] = result.Passed,
            ["gates"] = result.Verdicts.Count,
            ["gatesFailed"] = result.Failed.Count,
            ["baseFromCache"] = result.BaseSource.Count(p => p.Value == "cache"),
        };
        foreach (var sc in result.Comparisons)
        foreach (var m in sc.Metrics)
        {
            numbers[$"{sc.Suite}.{m.Metric}.base"] = Math.Round(m.Base, 6);
            numbers[$"{sc.Suite}.{m.Metric}.candidate"] = Math.Round(m.Candidate, 6);
        }
        return new StageOutcome
        {
            Metrics = numbers,
            Failure = result.Passed ? null
                : $"{result.Failed.Count} of {result.Verdicts.Count} release gates failed: " + string.Join("; ", result.Failed.Select(v => v.Message))
                  + $" (report: {Path.Combine(run.StageName, EvaluationReports.MarkdownFile)})",
        };
    }

    /// <summary>The adapter folder to evaluate and the learning curves that came with it (if any).</summary>
    private (string Adapter, string? Metrics) Candidate(StageRun run)
    {
        if (adapterFolder is not null)
        {
            if (!Directory.Exists(adapterFolder)) throw new UserInputException($"evaluate.adapter = {adapterFolder}: folder not found");
            string? metrics = new[] { Path.Combine(adapterFolder, MetricsFile), Path.Combine(adapterFolder, "..", MetricsFile) }.FirstOrDefault(File.Exists);
            return (adapterFolder, metrics is null ? null : Path.GetFullPath(metrics));
        }
        if (candidateStage is null)
            throw new UserInputException("evaluate: no candidate; set evaluate.adapter (or pass --adapter DIR) or enable the finetune stage");
        string upstream = run.UpstreamOutput(candidateStage);
        string adapter = Path.Combine(upstream, AdapterSubfolder);
        if (!Directory.Exists(adapter))
            throw new UserInputException($"evaluate: the candidate is {candidateStage}'s adapter, but {adapter} does not exist; run `forgetless {candidateStage}` first, or set evaluate.adapter=DIR (--adapter DIR)");
        string metricsFile = Path.Combine(upstream, MetricsFile);
        return (adapter, File.Exists(metricsFile) ? metricsFile : null);
    }

    /// <summary>SHA-256 over a folder's files (relative path + content hash), like the run store's directory inputs.</summary>
    internal static string FolderDigest(string directory, FileHashes hashes)
    {
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"base model folder not found: {directory}");
        string digest = hashes.DirectoryDigest(directory);
        hashes.Save();
        return digest;
    }
}
