using Forgetless.Evaluation;
using Forgetless.FineTuning;
using Forgetless.Model;
using Forgetless.Packaging;
using Forgetless.Peft;
using Forgetless.Runs;

namespace Forgetless.Stages.Evaluate;

/// <summary>
/// The evaluate stage, the release gate: scores every suite on the base model and on base + the
/// candidate adapter, compares them item by item, judges the gates and writes results.json,
/// junit.xml, report.md and report.html, and judged-weights.json: the digests of the adapter and base model files
/// the verdicts are about (the package stage packages no other bytes). A failed gate completes the stage (outputs are published)
/// with <see cref="StageOutcome.Failure"/> set, which the host turns into exit code 4.
/// </summary>
/// <param name="candidateStage">Upstream stage whose <c>adapter/</c> is the candidate; null when <paramref name="adapterFolder"/> is given.</param>
/// <param name="adapterFolder">An explicit adapter folder (standalone use); declared as a folder input.</param>
public sealed class EvaluateStage(StageContext context, EvaluateOptions options, string? candidateStage, string? adapterFolder, string toolVersion) : IStage
{
    public const string AdapterSubfolder = "adapter";
    public const string MetricsFile = "metrics.jsonl";

    public string Name => "evaluate";

    /// <summary>The model the candidate is compared with: <c>evaluate.baseModel</c>, else the run's base model.</summary>
    private string BaseModel => options.BaseModel.Length > 0 ? context.Resolve(options.BaseModel) : context.BaseModel;
    private int Seed => context.Seed;

    public void DeclareInputs(StageInputs inputs)
    {
        inputs.Value("config.evaluate", options.ToJson());
        inputs.Value("run.seed", Seed.ToString(System.Globalization.CultureInfo.InvariantCulture));
        inputs.Directory("run.baseModel", BaseModel);
        foreach (var suite in options.Suites)
            inputs.File($"evaluate.suites.{suite.Name}", context.Resolve(suite.Path));
        if (adapterFolder is not null) inputs.Directory("evaluate.adapter", adapterFolder);
        else if (candidateStage is not null) inputs.Upstream(candidateStage);
    }

    public async Task<StageOutcome> RunAsync(StageRun run, CancellationToken cancellationToken)
    {
        var (adapter, metrics) = Candidate(run);
        // The verdicts are about these bytes: recorded beside them, so that only these weights can be packaged with them.
        var judged = JudgedWeights.Of(adapter, BaseModel);
        string cacheDirectory = Path.Combine(context.CacheDirectory, "evaluate");
        var placement = context.Placement(run.Logger);
        var evaluation = new ForgettingEvaluation
        {
            Options = options,
            BaseDirectory = context.BaseDirectory,
            LoadBase = () => StageContext.LoadWithTokenizer(BaseModel, "evaluate (to score text)", placement),
            ApplyCandidate = model => { AdapterFolder.Apply(model, adapter); placement.Place(model, model.PrefixKeyValues as TorchSharp.torch.nn.Module); },
            BaseFingerprint = FolderDigest(BaseModel, new FileHashes(Path.Combine(cacheDirectory, "file-hashes.json"))),
            CacheDirectory = cacheDirectory,
            Seed = Seed,
            MetricsJsonl = metrics,
            Logger = run.Logger,
            Config = new Dictionary<string, object?>
            {
                ["base_model"] = BaseModel,
                ["adapter"] = adapter,
                ["candidate"] = candidateStage is not null ? $"stage {candidateStage}" : "adapter folder",
                ["seed"] = options.Seed ?? Seed,
                ["batch_size"] = options.BatchSize,
                ["device"] = placement.Device.type.ToString().ToLowerInvariant(),
                ["fingerprint"] = run.Fingerprint,
            },
        };
        var result = await NativeHeap.RunInMainArena(() => evaluation.Run(cancellationToken));
        var after = JudgedWeights.Of(adapter, BaseModel);
        if (after.Adapter.Digest != judged.Adapter.Digest || after.BaseModel.Digest != judged.BaseModel.Digest)
            throw new UserInputException($"evaluate: {(after.Adapter.Digest != judged.Adapter.Digest ? "the adapter " + adapter : "the base model " + BaseModel)} " +
                                         "changed while it was evaluated; nothing is published — rerun when it is complete");
        EvaluationReports.WriteAll(result, run.OutputDirectory, toolVersion);
        judged.Write(run.OutputDirectory);

        var numbers = new Dictionary<string, object?>
        {
            ["passed"] = result.Passed,
            ["gates"] = result.Verdicts.Count,
            ["gates_failed"] = result.Failed.Count,
            ["base_from_cache"] = result.BaseSource.Count(p => p.Value == "cache"),
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
