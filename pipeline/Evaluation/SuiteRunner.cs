using System.Text;
using System.Text.RegularExpressions;
using Forgetless.Model.Inference;
using Forgetless.Progress;

namespace Forgetless.Evaluation;

/// <summary>
/// Scores one suite on one model the way lm-evaluation-harness scores the task shape. Items go to the scorer
/// many at a time (the scorer batches their rows by length and runs the continuations of one context — an item's
/// choices or candidates — over one shared pass of the context); generation is greedy, many prompts per batch, each
/// stopping at its own end of text or first line break.
/// </summary>
public sealed partial class SuiteRunner(Scorer scorer, TextGenerator generator, int batchSize = 8)
{
    /// <summary>Items handed to the scorer or generator together, per unit of batch size.</summary>
    private const int ItemsPerBatchRow = 8;

    public SuiteResult Run(SuiteOptions suite, string path, CancellationToken cancellationToken, string? progressLabel = null)
    {
        var rows = SuiteFile.Read(path, suite.Limit, suite.Fields);
        using var progress = new ProgressBar(progressLabel ?? suite.Name, rows.Count, "items");
        var items = new List<ItemScore>(rows.Count);
        // Many items per chunk, so that the scorer can batch their rows by length and share their contexts.
        foreach (var chunk in rows.Chunk(Math.Max(1, batchSize) * ItemsPerBatchRow))
        {
            cancellationToken.ThrowIfCancellationRequested();
            items.AddRange(suite.Type switch
            {
                SuiteType.Perplexity => Perplexity(chunk, cancellationToken),
                SuiteType.Cloze => Cloze(chunk, suite.Preset, cancellationToken),
                SuiteType.MultipleChoice => MultipleChoice(chunk, suite.Delimiter, suite.Preset, cancellationToken),
                SuiteType.Generation => Generation(chunk, suite.MaxNewTokens, cancellationToken),
                _ => throw new ArgumentOutOfRangeException(nameof(suite), suite.Type, null),
            });
            progress.Advance(chunk.Length);
        }
        return new SuiteResult(suite.Name, suite.Type, suite.Role, items, MetricsFor(suite.Type, items));
    }

    /// <summary>
    /// The metrics of a suite type. Metrics under lm-eval's names are lm-eval's numbers: <c>word_perplexity</c>,
    /// <c>byte_perplexity</c> and <c>bits_per_byte</c> of a rolling log-likelihood; LAMBADA's <c>acc</c> and
    /// <c>perplexity</c> (exp of minus the mean over items of each item's summed target log-likelihood); multiple
    /// choice <c>acc</c>, <c>acc_norm</c> (per character of the choice) and <c>acc_bytes</c> (per UTF-8 byte).
    /// Forgetless's own: <c>nll</c> and <c>token_perplexity</c> (per token), <c>acc_choice</c>.
    /// </summary>
    public static IReadOnlyList<MetricDefinition> MetricsFor(SuiteType type, IReadOnlyList<ItemScore> items) => type switch
    {
        SuiteType.Perplexity =>
        [
            MetricDefinition.MeanPer("nll", "nll", "tokens"),
            MetricDefinition.Perplexity("token_perplexity", "nll", "tokens"),
            MetricDefinition.Perplexity("word_perplexity", "nll", "words"),
            MetricDefinition.Perplexity("byte_perplexity", "nll", "bytes"),
            MetricDefinition.BitsPerByte("bits_per_byte", "nll", "bytes"),
        ],
        SuiteType.Cloze => items.Any(i => i.Values.ContainsKey("acc_choice"))
            ? [.. ClozeMetrics, MetricDefinition.Mean("acc_choice")]
            : ClozeMetrics,
        SuiteType.MultipleChoice => [MetricDefinition.Mean("acc"), MetricDefinition.Mean("acc_norm"), MetricDefinition.Mean("acc_bytes")],
        SuiteType.Generation => [MetricDefinition.Mean("exact_match"), MetricDefinition.Mean("normalized_match")],
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    private static readonly MetricDefinition[] ClozeMetrics =
    [
        MetricDefinition.Mean("acc"),
        MetricDefinition.PerplexityOfItems("perplexity", "nll"),
        MetricDefinition.Perplexity("token_perplexity", "nll", "tokens"),
    ];

    /// <summary>
    /// lm-eval's <c>loglikelihood_rolling</c> over each whole text (<see cref="RollingWindows"/>: windows of the model's
    /// context, the first conditioned on BOS/EOS, the last given more context), with its word count
    /// (<c>len(re.split(r"\s+", text))</c>) and byte count. The windows of every item in the chunk go to the scorer together.
    /// </summary>
    private IEnumerable<ItemScore> Perplexity(SuiteFile.Row[] chunk, CancellationToken cancellationToken)
    {
        if ((scorer.Tokenizer.BosId ?? scorer.Tokenizer.EosId) is null)
            throw new SuiteFormatException("perplexity needs a BOS or EOS token to condition the first window on");
        var texts = chunk.Select(r => r.String("text")).ToArray();
        for (int item = 0; item < chunk.Length; item++)
            if (texts[item].Length == 0) throw new SuiteFormatException($"{chunk[item].Path}:{chunk[item].Line}: '{chunk[item].Source("text")}' is empty");
        var scores = scorer.Score(texts.Select(ScoreRequest.ForText).ToList(), cancellationToken);
        for (int item = 0; item < chunk.Length; item++)
            yield return new ItemScore(chunk[item].OptionalString("category"), new Dictionary<string, double>
            {
                ["nll"] = -scores[item].SumLogProb,
                ["tokens"] = scores[item].TokenCount,
                ["words"] = PythonText.SplitOnWhitespaceCount(texts[item]),
                ["bytes"] = Encoding.UTF8.GetByteCount(texts[item]),
            });
    }

    /// <summary>
    /// LAMBADA-style (lm-eval's <c>loglikelihood</c> task): the target is right when every target token is the greedy
    /// choice; each item keeps its summed target NLL and token count; with candidates, also the choice among them.
    /// Items without candidates are scored as one batch.
    /// </summary>
    private IEnumerable<ItemScore> Cloze(SuiteFile.Row[] chunk, SuitePreset preset, CancellationToken cancellationToken)
    {
        var parsed = chunk.Select(row => ClozeItem(row, preset)).ToArray();
        // Each item's continuations: the target alone, or its candidates with the target among them.
        var continuations = parsed.Select(p => p.Candidates is { Count: > 0 } candidates
            ? candidates.Contains(p.Target) ? candidates.ToList() : [.. candidates, p.Target]
            : new List<string> { p.Target }).ToArray();
        var scores = ScoreContinuations(parsed.Select(p => p.Context).ToArray(), continuations, cancellationToken);
        for (int i = 0; i < chunk.Length; i++)
        {
            var values = new Dictionary<string, double>();
            int gold = continuations[i].IndexOf(parsed[i].Target);
            var scored = scores[i][gold];
            if (parsed[i].Candidates is { Count: > 0 })
                values["acc_choice"] = ArgMax(scores[i].Select(r => r.SumLogProb)) == gold ? 1 : 0;
            values["acc"] = scored.IsGreedy ? 1 : 0;
            values["nll"] = -scored.SumLogProb;
            values["tokens"] = scored.TokenCount;
            yield return new ItemScore(chunk[i].OptionalString("category"), values);
        }
    }

    /// <summary>Scores every continuation of every context in one call, so the scorer can share and batch them.</summary>
    private IReadOnlyList<ScoreResult>[] ScoreContinuations(string[] contexts, IReadOnlyList<string>[] continuations, CancellationToken cancellationToken)
    {
        var requests = contexts.SelectMany((context, i) => continuations[i].Select(c => ScoreRequest.ForContinuation(context, c))).ToList();
        var results = scorer.Score(requests, cancellationToken);
        var byItem = new IReadOnlyList<ScoreResult>[contexts.Length];
        for (int i = 0, k = 0; i < contexts.Length; k += continuations[i].Count, i++)
            byItem[i] = results.Skip(k).Take(continuations[i].Count).ToList();
        return byItem;
    }

    private static (string Context, string Target, IReadOnlyList<string>? Candidates) ClozeItem(SuiteFile.Row row, SuitePreset preset)
    {
        if (preset != SuitePreset.Lambada)
            return (row.String("context"), row.String("target"), row.OptionalStrings("candidates"));
        // lm-eval's lambada: context = text.rsplit(" ", 1)[0], target = " " + the last word.
        string text = row.String("text");
        int space = text.LastIndexOf(' ');
        if (space <= 0 || space == text.Length - 1)
            throw new SuiteFormatException($"{row.Path}:{row.Line}: '{row.Source("text")}' needs at least two words separated by a space");
        return (text[..space], " " + text[(space + 1)..], null);
    }

    /// <summary>
    /// lm-eval's multiple choice: each choice is scored as the continuation <c>delimiter + choice</c>; acc takes the
    /// highest summed log-likelihood, acc_norm the highest per character of the choice (Python's <c>len(choice)</c>,
    /// without the delimiter), acc_bytes per UTF-8 byte of the choice. Ties go to the first choice, as numpy's argmax.
    /// </summary>
    private IEnumerable<ItemScore> MultipleChoice(SuiteFile.Row[] chunk, string delimiter, SuitePreset preset, CancellationToken cancellationToken)
    {
        var parsed = chunk.Select(row =>
        {
            var (query, choices, gold) = preset == SuitePreset.Hellaswag ? Hellaswag(row) : (row.String("query"), row.Strings("choices"), row.Int("gold"));
            if (choices.Count == 0) throw new SuiteFormatException($"{row.Path}:{row.Line}: '{row.Source("choices")}' is empty");
            if (gold < 0 || gold >= choices.Count)
                throw new SuiteFormatException($"{row.Path}:{row.Line}: {row.Source("gold")} = {gold} but there are {choices.Count} choices");
            return (Query: query, Choices: choices, Gold: gold);
        }).ToArray();
        var scores = ScoreContinuations(parsed.Select(p => p.Query).ToArray(),
            parsed.Select(p => (IReadOnlyList<string>)p.Choices.Select(c => delimiter + c).ToList()).ToArray(), cancellationToken);
        for (int i = 0; i < chunk.Length; i++)
        {
            var (results, choices, gold) = (scores[i], parsed[i].Choices, parsed[i].Gold);
            int raw = ArgMax(results.Select(r => r.SumLogProb));
            int norm = ArgMax(results.Select((r, c) => r.SumLogProb / PythonText.Length(choices[c])));
            int bytes = ArgMax(results.Select((r, c) => r.SumLogProb / Encoding.UTF8.GetByteCount(choices[c])));
            yield return new ItemScore(chunk[i].OptionalString("category"), new Dictionary<string, double>
            {
                ["acc"] = raw == gold ? 1 : 0,
                ["acc_norm"] = norm == gold ? 1 : 0,
                ["acc_bytes"] = bytes == gold ? 1 : 0,
            });
        }
    }

    /// <summary>lm-eval's hellaswag: query from activity label and both context halves; endings cleaned the same way.</summary>
    private static (string Query, IReadOnlyList<string> Choices, int Gold) Hellaswag(SuiteFile.Row row)
    {
        string ctx = row.String("ctx_a") + " " + Capitalize(row.String("ctx_b"));
        string query = HellaswagClean(row.String("activity_label") + ": " + ctx);
        var endings = row.Strings(row.Has("choices") ? "choices" : "endings").Select(HellaswagClean).ToList();
        int gold = row.Int(row.Has("gold") ? "gold" : "label");
        return (query, endings, gold);
    }

    /// <summary>Python's str.capitalize: first character upper case, the rest lower case.</summary>
    public static string Capitalize(string text) =>
        text.Length == 0 ? text : char.ToUpperInvariant(text[0]) + text[1..].ToLowerInvariant();

    /// <summary>The WikiHow markup clean-up lm-eval applies to HellaSwag text.</summary>
    public static string HellaswagClean(string text)
    {
        text = text.Trim().Replace(" [title]", ". ");
        text = Brackets().Replace(text, "");
        return text.Replace("  ", " ");
    }

    /// <summary>Greedy generation up to the end-of-text token or the first line break; the output is the first line.</summary>
    private IEnumerable<ItemScore> Generation(SuiteFile.Row[] chunk, int maxNewTokens, CancellationToken cancellationToken)
    {
        var prompts = chunk.Select(row => (IReadOnlyList<int>)scorer.Tokenizer.Encode(row.String("prompt"))).ToArray();
        var options = new GenerationOptions { MaxNewTokens = maxNewTokens, StopAfterLineBreak = true };
        var outputs = new string[chunk.Length];
        // Prompts of about the same length together, so that little of each batch is padding.
        var order = Enumerable.Range(0, chunk.Length).OrderBy(i => prompts[i].Count).ToArray();
        foreach (var batch in order.Chunk(Math.Max(1, batchSize) * ItemsPerBatchRow))
        {
            var generated = generator.GenerateGreedy(batch.Select(i => prompts[i]).ToList(), options, cancellationToken);
            for (int k = 0; k < batch.Length; k++) outputs[batch[k]] = generated[k].Text;
        }
        for (int i = 0; i < chunk.Length; i++)
        {
            string output = outputs[i], reference = chunk[i].String("reference");
            int newline = output.IndexOf('\n');
            if (newline >= 0) output = output[..newline];
            yield return new ItemScore(chunk[i].OptionalString("category"), new Dictionary<string, double>
            {
                ["exact_match"] = output.Trim() == reference.Trim() ? 1 : 0,
                ["normalized_match"] = Normalize(output) == Normalize(reference) ? 1 : 0,
            })
            {
                Output = output,
            };
        }
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

    [GeneratedRegex(@"\[.*?\]")]
    private static partial Regex Brackets();
}
