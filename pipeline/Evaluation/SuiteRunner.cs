using System.Text;
using System.Text.RegularExpressions;
using Forgetless.Model.Inference;
using Forgetless.Progress;

namespace Forgetless.Evaluation;

/// <summary>Scores one suite on one model, item by item, the way lm-evaluation-harness scores the task shape.</summary>
public sealed partial class SuiteRunner(Scorer scorer, TextGenerator generator)
{
    public SuiteResult Run(SuiteOptions suite, string path, CancellationToken cancellationToken, string? progressLabel = null)
    {
        var rows = SuiteFile.Read(path, suite.Limit);
        using var progress = new ProgressBar(progressLabel ?? suite.Name, rows.Count, "items");
        var items = new List<ItemScore>(rows.Count);
        foreach (var row in rows)
        {
            cancellationToken.ThrowIfCancellationRequested();
            items.Add(suite.Type switch
            {
                SuiteType.Perplexity => Perplexity(row),
                SuiteType.Cloze => Cloze(row),
                SuiteType.MultipleChoice => MultipleChoice(row, suite.Delimiter),
                SuiteType.Generation => Generation(row, suite.MaxNewTokens, cancellationToken),
                _ => throw new ArgumentOutOfRangeException(nameof(suite), suite.Type, null),
            });
            progress.Advance();
        }
        return new SuiteResult(suite.Name, suite.Type, suite.Role, items, MetricsFor(suite.Type, items));
    }

    public static IReadOnlyList<MetricDefinition> MetricsFor(SuiteType type, IReadOnlyList<ItemScore> items) => type switch
    {
        SuiteType.Perplexity =>
        [
            MetricDefinition.MeanPer("nll", "nll", "tokens"),
            MetricDefinition.Perplexity("perplexity", "nll", "tokens"),
            MetricDefinition.Perplexity("word_perplexity", "nll", "words"),
            MetricDefinition.BitsPerByte("bits_per_byte", "nll", "bytes"),
        ],
        SuiteType.Cloze => items.Any(i => i.Values.ContainsKey("acc_choice"))
            ? [MetricDefinition.Mean("acc"), MetricDefinition.Perplexity("perplexity", "nll", "tokens"), MetricDefinition.Mean("acc_choice")]
            : [MetricDefinition.Mean("acc"), MetricDefinition.Perplexity("perplexity", "nll", "tokens")],
        SuiteType.MultipleChoice => [MetricDefinition.Mean("acc"), MetricDefinition.Mean("acc_norm")],
        SuiteType.Generation => [MetricDefinition.Mean("exact_match"), MetricDefinition.Mean("normalized_match")],
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    /// <summary>
    /// Rolling log-likelihood over the whole text in windows of the model's context, each window
    /// conditioned on the token before it (lm-eval's rolling loglikelihood with context length 1).
    /// </summary>
    private ItemScore Perplexity(SuiteFile.Row row)
    {
        string text = row.String("text");
        var tokens = scorer.Tokenizer.Encode(text);
        int start = scorer.Tokenizer.BosId ?? scorer.Tokenizer.EosId ?? throw new SuiteFormatException("perplexity needs a BOS or EOS token to condition the first window on");
        int window = scorer.Model.Config.MaxPositionEmbeddings - 1;
        var rows = new List<(int[] Context, int[] Target)>();
        for (int offset = 0; offset < tokens.Length; offset += window)
        {
            int[] context = [offset == 0 ? start : tokens[offset - 1]];
            rows.Add((context, tokens[offset..Math.Min(tokens.Length, offset + window)]));
        }
        double nll = -scorer.ScoreTokens(rows).Sum(r => r.SumLogProb);
        return new ItemScore(row.OptionalString("category"), new Dictionary<string, double>
        {
            ["nll"] = nll,
            ["tokens"] = tokens.Length,
            ["words"] = text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length,
            ["bytes"] = Encoding.UTF8.GetByteCount(text),
        });
    }

    /// <summary>LAMBADA-style: the target is right when every target token is the greedy choice; also a choice among context words.</summary>
    private ItemScore Cloze(SuiteFile.Row row)
    {
        string context = row.String("context"), target = row.String("target");
        var candidates = row.OptionalStrings("candidates");
        var values = new Dictionary<string, double>();
        ScoreResult scored;
        if (candidates is { Count: > 0 })
        {
            var choices = candidates.Contains(target) ? candidates : [.. candidates, target];
            var results = new ChoiceScorer(scorer).Score(context, choices);
            scored = results[choices.ToList().IndexOf(target)];
            values["acc_choice"] = ArgMax(results.Select(r => r.SumLogProb)) == choices.ToList().IndexOf(target) ? 1 : 0;
        }
        else
        {
            scored = scorer.Score(ScoreRequest.ForContinuation(context, target));
        }
        values["acc"] = scored.IsGreedy ? 1 : 0;
        values["nll"] = -scored.SumLogProb;
        values["tokens"] = scored.TokenCount;
        return new ItemScore(row.OptionalString("category"), values);
    }

    /// <summary>acc: highest summed log-likelihood; acc_norm: highest log-likelihood per character of the continuation.</summary>
    private ItemScore MultipleChoice(SuiteFile.Row row, string delimiter)
    {
        string query = row.String("query");
        var choices = row.Strings("choices");
        int gold = row.Int("gold");
        if (gold < 0 || gold >= choices.Count)
            throw new SuiteFormatException($"{row.Path}:{row.Line}: gold = {gold} but there are {choices.Count} choices");
        var continuations = choices.Select(c => delimiter + c).ToList();
        var results = new ChoiceScorer(scorer).Score(query, continuations);
        int raw = ArgMax(results.Select(r => r.SumLogProb));
        int norm = ArgMax(results.Select((r, i) => r.SumLogProb / continuations[i].Length));
        return new ItemScore(row.OptionalString("category"), new Dictionary<string, double>
        {
            ["acc"] = raw == gold ? 1 : 0,
            ["acc_norm"] = norm == gold ? 1 : 0,
        });
    }

    /// <summary>Greedy generation up to the end-of-text token or the first line break.</summary>
    private ItemScore Generation(SuiteFile.Row row, int maxNewTokens, CancellationToken cancellationToken)
    {
        string prompt = row.String("prompt"), reference = row.String("reference");
        var output = generator.Generate(prompt, new GenerationOptions { MaxNewTokens = maxNewTokens }, cancellationToken).Text;
        int newline = output.IndexOf('\n');
        if (newline >= 0) output = output[..newline];
        return new ItemScore(row.OptionalString("category"), new Dictionary<string, double>
        {
            ["exact_match"] = output.Trim() == reference.Trim() ? 1 : 0,
            ["normalized_match"] = Normalize(output) == Normalize(reference) ? 1 : 0,
        });
    }

    /// <summary>Case, punctuation and spacing do not count (SQuAD-style answer normalisation).</summary>
    public static string Normalize(string text) =>
        Spaces().Replace(Punctuation().Replace(text.ToLowerInvariant(), " "), " ").Trim();

    private static int ArgMax(IEnumerable<double> values)
    {
        int best = -1, i = 0;
        double bestValue = double.NegativeInfinity;
        foreach (var v in values)
        {
            if (best < 0 || v > bestValue) (best, bestValue) = (i, v);
            i++;
        }
        return best;
    }

    [GeneratedRegex(@"[\p{P}\p{S}]")]
    private static partial Regex Punctuation();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Spaces();
}
