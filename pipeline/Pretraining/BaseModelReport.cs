using System.Globalization;
using System.Text;
using System.Text.Json;
using Forgetless.Corpora;
using Forgetless.Evaluation;
using Forgetless.Model;
using Forgetless.Model.Inference;
using Forgetless.Model.Tokenizers;

namespace Forgetless.Pretraining;

/// <summary>
/// Measures what the pretrained base model knows, for its model card: held-out perplexity against
/// a bigram baseline, the fact probe (seen vs unseen facts), the cloze suite, and a sample.
/// </summary>
public sealed class BaseModelReport
{
    public required IReadOnlyDictionary<string, object?> Numbers { get; init; }
    /// <summary>Samples from a few fixed prompts (prompt included), so a reader sees what the model writes.</summary>
    public required IReadOnlyList<string> Samples { get; init; }

    /// <summary>Prompts for the card's samples: ordinary Brown-style sentence openings.</summary>
    public static readonly string[] SamplePrompts = ["The jury said that", "In the morning, the", "He looked at the"];

    public static BaseModelReport Measure(CausalLM model, ITokenizer tokenizer, int[] trainTokens, string heldoutJsonl, string factsJsonl,
        string clozeJsonl, int seed, CancellationToken cancellationToken)
    {
        var scorer = new Scorer(model, tokenizer);
        var runner = new SuiteRunner(scorer, new TextGenerator(model, tokenizer));
        var numbers = new SortedDictionary<string, object?>(StringComparer.Ordinal);

        var heldout = runner.Run(new SuiteOptions { Name = "heldout", Type = SuiteType.Perplexity }, heldoutJsonl, cancellationToken);
        numbers["heldout.perplexity"] = Round(heldout.Value("token_perplexity"));
        numbers["heldout.bits_per_byte"] = Round(heldout.Value("bits_per_byte"));
        int start = tokenizer.EosId ?? 0;
        var docs = SuiteFile.Read(heldoutJsonl).Select(r => tokenizer.Encode(r.String("text"))).ToList();
        var (alpha, bigramNll) = new BigramBaseline(trainTokens, tokenizer.VocabSize).Best(docs, start);
        double tokens = docs.Sum(d => d.Length);
        double bytes = SuiteFile.Read(heldoutJsonl).Sum(r => Encoding.UTF8.GetByteCount(r.String("text")));
        numbers["bigram.perplexity"] = Round(Math.Exp(bigramNll / tokens));
        numbers["bigram.bits_per_byte"] = Round(bigramNll / Math.Log(2) / bytes);
        numbers["bigram.alpha"] = alpha;

        var facts = runner.Run(new SuiteOptions { Name = "facts", Type = SuiteType.MultipleChoice }, factsJsonl, cancellationToken);
        var groups = facts.Categories();
        foreach (var metric in new[] { "acc", "acc_norm" })
        {
            var definition = facts.Metric(metric);
            double seen = definition.Aggregate(facts.Items, groups["seen"]), unseen = definition.Aggregate(facts.Items, groups["unseen"]);
            var gap = GapInterval(definition, facts.Items, groups["seen"], groups["unseen"], seed);
            numbers[$"facts.{metric}.seen"] = Round(seen);
            numbers[$"facts.{metric}.unseen"] = Round(unseen);
            numbers[$"facts.{metric}.gap"] = Round(seen - unseen);
            numbers[$"facts.{metric}.gap_ci95"] = new[] { Round(gap.Low), Round(gap.High) };
        }

        var cloze = runner.Run(new SuiteOptions { Name = "cloze", Type = SuiteType.Cloze }, clozeJsonl, cancellationToken);
        numbers["cloze.acc_greedy"] = Round(cloze.Value("acc"));
        numbers["cloze.acc_choice"] = Round(cloze.Value("acc_choice"));
        numbers["cloze.target_perplexity"] = Round(cloze.Value("token_perplexity"));
        var clozeItems = SuiteFile.Read(clozeJsonl).Select(r => new ClozeItem("", r.String("context"), r.String("target"),
            r.Strings("candidates"), "")).ToList();
        numbers["cloze.baseline_most_frequent"] = Round(ClozeBuilder.Baselines(clozeItems).MostFrequent);

        var generator = new TextGenerator(model, tokenizer);
        var samples = SamplePrompts.Select(prompt => prompt + generator.Generate(prompt, new GenerationOptions
        {
            MaxNewTokens = 60, Temperature = 0.8, TopP = 0.95, Seed = seed,
        }, cancellationToken).Text).ToList();
        return new BaseModelReport { Numbers = numbers, Samples = samples };
    }

    /// <summary>Bootstrap interval of mean(seen) − mean(unseen), resampling each group on its own.</summary>
    private static Interval GapInterval(MetricDefinition metric, IReadOnlyList<ItemScore> items, IReadOnlyList<int> seen, IReadOnlyList<int> unseen, int seed)
    {
        var random = new Random(seed);
        var gaps = new double[Bootstrap.DefaultResamples];
        var a = new int[seen.Count];
        var b = new int[unseen.Count];
        for (int r = 0; r < gaps.Length; r++)
        {
            for (int i = 0; i < a.Length; i++) a[i] = seen[random.Next(seen.Count)];
            for (int i = 0; i < b.Length; i++) b[i] = unseen[random.Next(unseen.Count)];
            gaps[r] = metric.Aggregate(items, a) - metric.Aggregate(items, b);
        }
        Array.Sort(gaps);
        return new Interval(gaps[(int)(0.025 * (gaps.Length - 1))], gaps[(int)Math.Ceiling(0.975 * (gaps.Length - 1))]);
    }

    public string ToJson() => JsonSerializer.Serialize(Numbers, new JsonSerializerOptions { WriteIndented = true });

    private static double Round(double x) => Math.Round(x, 4);

    public static string Format(object? value) => value switch
    {
        double d => d.ToString("0.####", CultureInfo.InvariantCulture),
        double[] pair => $"[{Format(pair[0])}, {Format(pair[1])}]",
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };
}
