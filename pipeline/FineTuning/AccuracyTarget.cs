using System.Globalization;
using Forgetless.Configuration;
using Forgetless.Evaluation;
using Forgetless.Model;
using Forgetless.Model.Inference;
using Forgetless.Model.Tokenizers;

namespace Forgetless.FineTuning;

/// <summary>
/// A held-out task accuracy that ends training (<c>finetune.targetAccuracy</c>): an accuracy metric of one of
/// Evaluate's suites, scored at every evaluation by Evaluate's own <see cref="SuiteRunner"/> on the suite's first
/// <c>finetune.targetAccuracyItems</c> items — a small fixed subset, so that probing costs a fraction of a step's
/// evaluation, with the numbers Evaluate would give on those items.
/// </summary>
public sealed class AccuracyTarget
{
    /// <summary>The rate metrics of each suite type (a perplexity suite has none).</summary>
    public static readonly IReadOnlyDictionary<SuiteType, string[]> Rates = new Dictionary<SuiteType, string[]>
    {
        [SuiteType.MultipleChoice] = ["acc", "acc_norm", "acc_bytes"],
        [SuiteType.Cloze] = ["acc", "acc_choice"],
        [SuiteType.Generation] = ["exact_match", "normalized_match"],
    };

    /// <summary>Items scored at each evaluation when <c>finetune.targetAccuracyItems</c> is unset.</summary>
    public const int DefaultItems = 100;

    /// <summary>Every metric a target can name, for the error of one that is none of them.</summary>
    public static IEnumerable<string> AllRates => Rates.Values.SelectMany(m => m).Distinct();

    private AccuracyTarget(double level, SuiteOptions suite, string path, string metric, int batchSize)
    {
        BatchSize = batchSize;
        Level = level;
        Suite = suite;
        Path = path;
        Metric = metric;
    }

    public double Level { get; }
    /// <summary>The suite as probed: Evaluate's, limited to the probe's items.</summary>
    public SuiteOptions Suite { get; }
    public string Path { get; }
    public string Metric { get; }
    /// <summary>Evaluate's batch size (<c>evaluate.batchSize</c>), so the probe scores as Evaluate does.</summary>
    public int BatchSize { get; }

    public string Describe => string.Create(CultureInfo.InvariantCulture, $"{Suite.Name} {Metric} on its first {Suite.Limit} items");

    /// <summary>
    /// The target of <paramref name="finetune"/> over <paramref name="evaluate"/>'s suites; null when
    /// <c>targetAccuracy</c> is 0. A suite that is missing or has no such metric is a configuration error naming the key.
    /// </summary>
    public static AccuracyTarget? Of(FineTuneOptions finetune, EvaluateOptions evaluate, Func<string, string> resolve)
    {
        if (finetune.TargetAccuracy <= 0) return null;
        var scored = evaluate.Suites.Where(s => Rates.ContainsKey(s.Type)).ToList();
        string metric = finetune.TargetAccuracyMetric ?? "acc";
        SuiteOptions? suite = finetune.TargetAccuracySuite is { Length: > 0 }
            ? evaluate.Suites.FirstOrDefault(s => s.Name == finetune.TargetAccuracySuite)
            : scored.FirstOrDefault(s => s.Role == SuiteRole.New);
        string candidates = scored.Count == 0 ? "evaluate has no multipleChoice, cloze or generation suite" : "one of " + string.Join(", ", scored.Select(s => s.Name));
        if (suite is null)
            throw new ConfigException(finetune.TargetAccuracySuite is { Length: > 0 }
                ? $"finetune.targetAccuracySuite = '{finetune.TargetAccuracySuite}': evaluate has no suite of that name; expected {candidates}"
                : $"finetune.targetAccuracy = {F(finetune.TargetAccuracy)}: no evaluate suite of role new to measure it on; set finetune.targetAccuracySuite to {candidates}");
        if (!Rates.TryGetValue(suite.Type, out var metrics))
            throw new ConfigException($"finetune.targetAccuracySuite = '{suite.Name}': a {suite.Type} suite has no accuracy; expected {candidates}");
        if (!metrics.Contains(metric))
            throw new ConfigException($"finetune.targetAccuracyMetric = '{metric}': suite '{suite.Name}' ({suite.Type}) has {string.Join(", ", metrics)}");
        int wanted = finetune.TargetAccuracyItems ?? DefaultItems;
        int items = suite.Limit > 0 ? Math.Min(suite.Limit, wanted) : wanted;
        var probed = new SuiteOptions
        {
            Name = suite.Name, Type = suite.Type, Role = suite.Role, Path = suite.Path, Limit = items, Delimiter = suite.Delimiter,
            MaxNewTokens = suite.MaxNewTokens, Preset = suite.Preset, Fields = new Dictionary<string, string>(suite.Fields, StringComparer.Ordinal),
        };
        return new AccuracyTarget(finetune.TargetAccuracy, probed, resolve(suite.Path), metric, evaluate.BatchSize);
    }

    /// <summary>The metric on the probe's items, scored in eval mode (the model's training flag is restored).</summary>
    public double Measure(CausalLM model, ITokenizer tokenizer, CancellationToken cancellationToken)
    {
        bool training = model.training;
        model.eval();
        try
        {
            var runner = new SuiteRunner(new Scorer(model, tokenizer, BatchSize), new TextGenerator(model, tokenizer), BatchSize);
            return runner.Run(Suite, Path, cancellationToken, $"{Suite.Name} {Metric}").Value(Metric);
        }
        finally
        {
            if (training) model.train();
        }
    }

    private static string F(double v) => v.ToString(CultureInfo.InvariantCulture);
}
