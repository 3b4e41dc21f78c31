using System.Text.Json;
using System.Text.Json.Nodes;
using Forgetless.Model;
using Forgetless.Model.Inference;
using Forgetless.Model.Tokenizers;
using Forgetless.Runs;
using Microsoft.Extensions.Logging;

namespace Forgetless.Evaluation;

/// <summary>One base-vs-candidate generation for the reports.</summary>
public sealed record GenerationSample(string Suite, string Prompt, string Reference, string Base, string Candidate);

/// <summary>A learning curve read from an upstream metrics.jsonl: series name → (step, value) points.</summary>
public sealed record LearningCurves(string Source, IReadOnlyDictionary<string, IReadOnlyList<(double Step, double Value)>> Series)
{
    /// <summary>
    /// Reads one JSON object per line, tolerating what is there: every numeric field but <c>step</c>
    /// becomes a series (step/loss/val_task_loss/heldout_loss when FineTune writes them); lines that
    /// are not JSON objects are skipped. Null when the file is missing or holds no numbers.
    /// </summary>
    public static LearningCurves? TryRead(string path)
    {
        if (!File.Exists(path)) return null;
        var series = new SortedDictionary<string, List<(double, double)>>(StringComparer.Ordinal);
        int line = 0;
        foreach (var text in File.ReadLines(path))
        {
            line++;
            JsonObject? row;
            try { row = JsonNode.Parse(text) as JsonObject; }
            catch (JsonException) { continue; }
            if (row is null) continue;
            double step = Number(row["step"]) ?? line;
            foreach (var (key, value) in row)
                if (key != "step" && Number(value) is { } v && double.IsFinite(v))
                    (series.TryGetValue(key, out var list) ? list : series[key] = []).Add((step, v));
        }
        return series.Count == 0 ? null
            : new LearningCurves(path, series.ToDictionary(p => p.Key, p => (IReadOnlyList<(double, double)>)p.Value, StringComparer.Ordinal));
    }

    private static double? Number(JsonNode? node) =>
        node is JsonValue v && v.TryGetValue<double>(out var d) ? d : null;
}

/// <summary>Everything one evaluation found; the reports are written from this.</summary>
public sealed record EvaluationResult(
    IReadOnlyList<SuiteComparison> Comparisons,
    IReadOnlyDictionary<string, (SuiteResult Base, SuiteResult Candidate)> Suites,
    IReadOnlyList<GateVerdict> Verdicts,
    IReadOnlyList<GenerationSample> Samples,
    LearningCurves? Curves,
    IReadOnlyDictionary<string, string> BaseSource,
    EvaluateOptions Options,
    IReadOnlyDictionary<string, object?> Config,
    DateTimeOffset Date)
{
    public bool Passed => Verdicts.All(v => v.Passed);
    public IReadOnlyList<GateVerdict> Failed => Verdicts.Where(v => !v.Passed).ToList();
}

/// <summary>
/// Scores every suite on the base model and on base + adapter, compares them item by item and judges
/// the gates. The model is loaded once: base suites are scored (or taken from the cache), then the
/// adapter is applied to the same model and the candidate is scored.
/// </summary>
public sealed class ForgettingEvaluation
{
    public required EvaluateOptions Options { get; init; }
    /// <summary>Folder suite paths are relative to (the pipeline file's folder).</summary>
    public required string BaseDirectory { get; init; }
    /// <summary>Loads the base model fresh.</summary>
    public required Func<(CausalLM Model, ITokenizer Tokenizer)> LoadBase { get; init; }
    /// <summary>Turns the loaded base into the candidate (applies the adapter).</summary>
    public required Action<CausalLM> ApplyCandidate { get; init; }
    /// <summary>Stands for the base model's weights and tokenizer in cache keys.</summary>
    public required string BaseFingerprint { get; init; }
    public required int Seed { get; init; }
    /// <summary>Where base item scores are cached; null: no cache.</summary>
    public string? CacheDirectory { get; init; }
    public string Device { get; init; } = "cpu";
    /// <summary>FineTune's metrics.jsonl, when the candidate came from there.</summary>
    public string? MetricsJsonl { get; init; }
    /// <summary>What results.json records under "config".</summary>
    public IReadOnlyDictionary<string, object?> Config { get; init; } = new Dictionary<string, object?>();
    public ILogger? Logger { get; init; }

    /// <summary>Which suites were actually scored, as "base:NAME" / "candidate:NAME" (the cache test reads this).</summary>
    public List<string> Scored { get; } = [];

    public string SuitePath(SuiteOptions suite) => Path.GetFullPath(suite.Path, BaseDirectory);

    public EvaluationResult Run(CancellationToken cancellationToken)
    {
        var errors = Options.Validate().ToList();
        if (Options.Suites.Count == 0) errors.Add("suites: at least one suite is required");
        if (errors.Count > 0) throw new Configuration.ConfigException(string.Join(Environment.NewLine, errors.Select(e => "evaluate." + e)));
        var cache = Options.CacheBase && CacheDirectory is not null ? new BaseResultCache(CacheDirectory) : null;
        var (model, tokenizer) = LoadBase();
        try
        {
            var baseResults = new Dictionary<string, SuiteResult>(StringComparer.Ordinal);
            var source = new Dictionary<string, string>(StringComparer.Ordinal);
            var runner = Runner(model, tokenizer);
            foreach (var suite in Options.Suites)
            {
                string path = SuitePath(suite);
                if (!File.Exists(path)) throw new SuiteFormatException($"{path}: evaluation suite file not found (evaluate suite '{suite.Name}')");
                string? key = cache is null ? null : BaseResultCache.Key(BaseFingerprint, FileHashes.Compute(path), suite, Device);
                if (key is not null && cache!.TryLoad(key, suite) is { } cached)
                {
                    Logger?.LogInformation("evaluate: base '{Suite}' from cache ({Count} items)", suite.Name, cached.Count);
                    baseResults[suite.Name] = cached;
                    source[suite.Name] = "cache";
                    continue;
                }
                Scored.Add("base:" + suite.Name);
                var result = runner.Run(suite, path, cancellationToken, $"base {suite.Name}");
                baseResults[suite.Name] = result;
                source[suite.Name] = "scored";
                if (key is not null) cache!.Save(key, result);
            }

            ApplyCandidate(model);
            model.eval();
            runner = Runner(model, tokenizer);
            var pairs = new Dictionary<string, (SuiteResult Base, SuiteResult Candidate)>(StringComparer.Ordinal);
            foreach (var suite in Options.Suites)
            {
                Scored.Add("candidate:" + suite.Name);
                pairs[suite.Name] = (baseResults[suite.Name], runner.Run(suite, SuitePath(suite), cancellationToken, $"candidate {suite.Name}"));
            }

            int seed = Options.Seed ?? Seed;
            var comparisons = Options.Suites
                .Select(s => SuiteComparison.Of(pairs[s.Name].Base, pairs[s.Name].Candidate, seed, Options.Confidence, Options.BootstrapResamples))
                .ToList();
            var verdicts = ReleaseGates.Judge(Options.Gates, pairs, Options.Decision, Options.AnyOfInterval, seed, Options.Confidence, Options.BootstrapResamples);
            foreach (var v in verdicts)
                Logger?.Log(v.Passed ? LogLevel.Information : LogLevel.Warning, "gate {Gate}: {Message}", v.Name, v.Message);
            return new EvaluationResult(comparisons, pairs, verdicts, Samples(pairs), MetricsJsonl is null ? null : LearningCurves.TryRead(MetricsJsonl),
                source, Options, Config, DateTimeOffset.UtcNow);
        }
        finally
        {
            model.Dispose();
        }
    }

    private SuiteRunner Runner(CausalLM model, ITokenizer tokenizer) =>
        new(new Scorer(model, tokenizer, Options.BatchSize), new TextGenerator(model, tokenizer), Options.BatchSize);

    private List<GenerationSample> Samples(Dictionary<string, (SuiteResult Base, SuiteResult Candidate)> pairs)
    {
        var samples = new List<GenerationSample>();
        if (Options.SampleGenerations == 0) return samples;
        foreach (var suite in Options.Suites.Where(s => s.Type == SuiteType.Generation))
        {
            var rows = SuiteFile.Read(SuitePath(suite), Math.Min(Options.SampleGenerations, suite.Limit > 0 ? suite.Limit : int.MaxValue), suite.Fields);
            var (b, c) = pairs[suite.Name];
            for (int i = 0; i < rows.Count && i < b.Count; i++)
                samples.Add(new GenerationSample(suite.Name, rows[i].String("prompt"), rows[i].String("reference"), b.Items[i].Output ?? "", c.Items[i].Output ?? ""));
        }
        return samples;
    }
}
