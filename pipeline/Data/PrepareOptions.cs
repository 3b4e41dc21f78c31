using System.Text.Json;
using System.Text.Json.Serialization;

namespace Forgetless.Data;

/// <summary>
/// The <c>prepare</c> section of forgetless.json: which data to read, how much replay to mix in,
/// and how to tokenize, filter and pack it. Paths are resolved against the folder the stage is given.
/// </summary>
public sealed class PrepareOptions : Forgetless.Configuration.IValidatableOptions
{
    /// <summary>New-task data. At least one is required.</summary>
    public List<DataSourceOptions> TaskSources { get; set; } = [];

    /// <summary>Old-ability data mixed in against forgetting (plain text, JSON lines, Parquet, or a prepared dataset).</summary>
    public List<DataSourceOptions> ReplaySources { get; set; } = [];

    /// <summary>Share of training tokens (replay + generated) / all, in [0, 1).</summary>
    public double ReplayShare { get; set; } = 0.25;

    public GeneratedReplayOptions GeneratedReplay { get; set; } = new();

    /// <summary>Tokens per training sequence.</summary>
    public int SeqLen { get; set; } = 512;

    public PackingMode Packing { get; set; } = PackingMode.Pack;

    public BadRowPolicy OnBadRow { get; set; } = BadRowPolicy.Fail;

    public OverLengthPolicy OverLength { get; set; } = OverLengthPolicy.Truncate;

    /// <summary>Drop exact duplicates after whitespace and case normalisation.</summary>
    public bool Dedup { get; set; } = true;

    public DecontaminationOptions Decontaminate { get; set; } = new();

    /// <summary>Fraction of rows (by stable content hash) that go to validation.parquet, in [0, 1).</summary>
    public double ValidationFraction { get; set; } = 0.05;

    /// <summary>Seeds replay sampling; the same seed and inputs give the same bytes.</summary>
    public int Seed { get; set; } = 1234;

    /// <summary>Sequences per Parquet row group (also flushed early past 64 MiB of buffered text).</summary>
    public int RowGroupSize { get; set; } = 1024;

    /// <summary>
    /// Every problem with these options: key (relative to the <c>prepare</c> section, as the configuration
    /// loader prefixes it), value and what is allowed. Empty when valid.
    /// </summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (TaskSources is null || TaskSources.Count == 0)
            errors.Add("taskSources: is empty; at least one task source is required.");
        ValidateSources("taskSources", TaskSources ?? [], isReplay: false, errors);
        ValidateSources("replaySources", ReplaySources ?? [], isReplay: true, errors);

        if (double.IsNaN(ReplayShare) || ReplayShare < 0 || ReplayShare >= 1)
            errors.Add($"replayShare: {ReplayShare} is not allowed; expected a fraction in [0, 1), e.g. 0.25.");
        else if (ReplayShare > 0 && (ReplaySources?.Count ?? 0) == 0 && GeneratedReplay is not { Enabled: true })
            errors.Add($"replayShare: {ReplayShare} needs replay data; add replaySources or enable generatedReplay.");

        if (GeneratedReplay is null)
            errors.Add("generatedReplay: is null; expected an object.");
        else if (GeneratedReplay.Enabled && GeneratedReplay.TokenBudget <= 0)
            errors.Add($"generatedReplay.tokenBudget: {GeneratedReplay.TokenBudget} is not allowed; expected a positive token count.");

        if (SeqLen < 8 || SeqLen > 1 << 20)
            errors.Add($"seqLen: {SeqLen} is not allowed; expected 8 to {1 << 20}.");
        if (!Enum.IsDefined(Packing))
            errors.Add($"packing: {(int)Packing} is not allowed; expected pack or pad.");
        if (!Enum.IsDefined(OnBadRow))
            errors.Add($"onBadRow: {(int)OnBadRow} is not allowed; expected fail or skip.");
        if (!Enum.IsDefined(OverLength))
            errors.Add($"overLength: {(int)OverLength} is not allowed; expected truncate or drop.");

        if (Decontaminate is null)
            errors.Add("decontaminate: is null; expected an object.");
        else
        {
            if (Decontaminate.Ngram < 4 || Decontaminate.Ngram > 64)
                errors.Add($"decontaminate.ngram: {Decontaminate.Ngram} is not allowed; expected 4 to 64 (13 is usual).");
            for (var i = 0; i < (Decontaminate.Suites?.Count ?? 0); i++)
                if (string.IsNullOrWhiteSpace(Decontaminate.Suites![i]))
                    errors.Add($"decontaminate.suites[{i}]: is empty; expected the path of a JSON-lines evaluation suite.");
        }

        if (double.IsNaN(ValidationFraction) || ValidationFraction < 0 || ValidationFraction >= 1)
            errors.Add($"validationFraction: {ValidationFraction} is not allowed; expected a fraction in [0, 1), e.g. 0.05.");
        if (RowGroupSize < 1)
            errors.Add($"rowGroupSize: {RowGroupSize} is not allowed; expected a positive number of sequences.");
        return errors;
    }

    private static void ValidateSources(string key, List<DataSourceOptions> sources, bool isReplay, List<string> errors)
    {
        for (var i = 0; i < sources.Count; i++)
        {
            var s = sources[i];
            var at = $"{key}[{i}]";
            if (s is null) { errors.Add($"{at}: is null; expected a source object."); continue; }
            if (string.IsNullOrWhiteSpace(s.Path))
                errors.Add($"{at}.path: is empty; expected a file path.");
            if (!Enum.IsDefined(s.Format))
                errors.Add($"{at}.format: {(int)s.Format} is not allowed; expected auto, jsonl, csv, parquet, text or preparedDataset.");
            else if (s.Format == SourceFormat.PreparedDataset && !isReplay)
                errors.Add($"{at}.format: preparedDataset is allowed only for replay sources.");
            if (double.IsNaN(s.Weight) || s.Weight <= 0 || s.Weight > 1000)
                errors.Add($"{at}.weight: {s.Weight} is not allowed; expected a positive number up to 1000.");
            var hasPrompt = !string.IsNullOrEmpty(s.PromptField);
            var hasResponse = !string.IsNullOrEmpty(s.ResponseField);
            if (hasPrompt != hasResponse)
                errors.Add($"{at}: promptField '{s.PromptField}' and responseField '{s.ResponseField}' must be given together (instruction style) or both left out (plain text via textField).");
            if (hasPrompt && !string.IsNullOrEmpty(s.TextField))
                errors.Add($"{at}.textField: '{s.TextField}' cannot be combined with promptField/responseField; choose instruction style or plain text.");
            if (s.Chat != Sources.ChatFormat.None)
            {
                if (isReplay) errors.Add($"{at}.chat: chat data is a task source; replay sources are plain text.");
                if (hasPrompt || hasResponse || !string.IsNullOrEmpty(s.TextField))
                    errors.Add($"{at}.chat: {s.Chat} reads its own fields; leave promptField, responseField and textField out.");
                if (s.Format is not (SourceFormat.Auto or SourceFormat.Jsonl))
                    errors.Add($"{at}.format: chat data is read from JSON lines (format jsonl), not {s.Format}.");
            }
        }
    }

    IEnumerable<string> Forgetless.Configuration.IValidatableOptions.Validate() => Validate();

    /// <summary>Canonical JSON of these options (camelCase, enums as names): the config the run store fingerprints.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    public static PrepareOptions FromJson(string json) =>
        JsonSerializer.Deserialize<PrepareOptions>(json, JsonOptions) ?? throw new JsonException("prepare options: JSON is null.");

    internal static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };
}

/// <summary>One input file and how its rows map to training documents.</summary>
public sealed class DataSourceOptions
{
    /// <summary>File path; for <see cref="SourceFormat.PreparedDataset"/> the folder of an earlier prepare (its train.parquet is read).</summary>
    public string Path { get; set; } = "";

    /// <summary>Name shown in the output's source column and in stats; defaults to the file name.</summary>
    public string? Name { get; set; }

    public SourceFormat Format { get; set; } = SourceFormat.Auto;

    /// <summary>Instruction style: prompt column (no loss) ...</summary>
    public string? PromptField { get; set; }

    /// <summary>... and response column (loss).</summary>
    public string? ResponseField { get; set; }

    /// <summary>Plain text column; <c>text</c> when neither this nor prompt/response is given.</summary>
    public string? TextField { get; set; }

    /// <summary>
    /// Chat data (JSON lines): <c>messages</c> (OpenAI), <c>shareGpt</c> or <c>alpaca</c>, rendered with the base model's
    /// chat template from its tokenizer_config.json; only the assistant turns carry loss. <c>none</c>: prompt/response or text.
    /// </summary>
    public Sources.ChatFormat Chat { get; set; } = Sources.ChatFormat.None;

    /// <summary>
    /// Task source: a multiplier of its tokens (0.5 keeps a seeded half, 2 uses every row twice).
    /// Replay source: its relative share of the replay tokens.
    /// </summary>
    public double Weight { get; set; } = 1.0;

    internal string DisplayName => string.IsNullOrWhiteSpace(Name) ? System.IO.Path.GetFileName(System.IO.Path.TrimEndingDirectorySeparator(Path)) : Name!;

    internal bool IsInstruction => !string.IsNullOrEmpty(PromptField) && !string.IsNullOrEmpty(ResponseField);

    internal string EffectiveTextField => string.IsNullOrEmpty(TextField) ? "text" : TextField!;
}

public sealed class GeneratedReplayOptions
{
    /// <summary>Let the base model write replay text (Self-Synthesized Rehearsal style); rows get kind <c>generated</c>.</summary>
    public bool Enabled { get; set; }

    /// <summary>Tokens to generate; counted toward the replay share.</summary>
    public long TokenBudget { get; set; } = 100_000;

    public int Seed { get; set; } = 1;
}

public sealed class DecontaminationOptions
{
    /// <summary>JSON-lines evaluation suites; every string field of every item is checked against.</summary>
    public List<string> Suites { get; set; } = [];

    /// <summary>A training row sharing an n-gram of this many words with a suite item is removed.</summary>
    public int Ngram { get; set; } = 13;
}

public enum SourceFormat { Auto, Jsonl, Csv, Parquet, Text, PreparedDataset }

public enum PackingMode { Pack, Pad }

public enum BadRowPolicy { Fail, Skip }

public enum OverLengthPolicy { Truncate, Drop }

/// <summary>What a training row is: new-task data, replayed old data, or replay the model wrote itself.</summary>
public enum RowKind { Task, Replay, Generated }
