namespace Forgetless.Evaluation;

/// <summary>The kinds of suite, each mirroring an lm-evaluation-harness task shape.</summary>
public enum SuiteType
{
    /// <summary>Rows <c>{"text": ...}</c>: token NLL, perplexity, bits per byte (like wikitext).</summary>
    Perplexity,
    /// <summary>Rows <c>{"context", "target", "candidates"?}</c>: greedy exact match and target perplexity (like LAMBADA), plus choice among candidates.</summary>
    Cloze,
    /// <summary>Rows <c>{"query", "choices", "gold"}</c>: acc and acc_norm (like HellaSwag, ARC).</summary>
    MultipleChoice,
    /// <summary>Rows <c>{"prompt", "reference"}</c>: greedy generation, exact and normalised match.</summary>
    Generation,
}

/// <summary>Old knowledge to keep, or the new task to learn.</summary>
public enum SuiteRole { Old, New }

/// <summary>
/// How rows of a public dump become suite items, for files that are not in the suite's own shape.
/// <c>Lambada</c>: cloze rows <c>{"text"}</c>, context = text without its last word, target = " " + last word.
/// <c>Hellaswag</c>: multiple-choice rows <c>{"activity_label", "ctx_a", "ctx_b", "endings", "label"}</c>,
/// query = activity_label + ": " + ctx_a + " " + capitalize(ctx_b), lm-eval's text clean-up applied.
/// </summary>
public enum SuitePreset { None, Lambada, Hellaswag }

/// <summary>One evaluation suite: a JSON-lines file and how to read and score it.</summary>
public sealed class SuiteOptions
{
    public string Name { get; set; } = "";
    public SuiteType Type { get; set; }
    public SuiteRole Role { get; set; } = SuiteRole.Old;
    public string Path { get; set; } = "";
    /// <summary>Score only the first N items (0: all). Handy for quick runs; gates then see fewer items.</summary>
    public int Limit { get; set; }
    /// <summary>Placed between a multiple-choice query and each choice (lm-eval's target_delimiter).</summary>
    public string Delimiter { get; set; } = " ";
    /// <summary>Generation: most new tokens per item.</summary>
    public int MaxNewTokens { get; set; } = 32;
    /// <summary>Reads a public dump unchanged (see <see cref="SuitePreset"/>).</summary>
    public SuitePreset Preset { get; set; } = SuitePreset.None;
    /// <summary>
    /// Field renames: suite field → field in the file, e.g. <c>{"query": "question", "gold": "answer", "category": "subject"}</c>.
    /// Fields not named keep their own names.
    /// </summary>
    public Dictionary<string, string> Fields { get; set; } = new(StringComparer.Ordinal);

    public IEnumerable<string> Validate(string key)
    {
        if (string.IsNullOrWhiteSpace(Name)) yield return $"{key}.name: every suite needs a name";
        if (string.IsNullOrWhiteSpace(Path)) yield return $"{key}.path: every suite needs a JSON-lines file";
        if (Limit < 0) yield return $"{key}.limit = {Limit}: must be 0 (all) or more";
        if (MaxNewTokens <= 0) yield return $"{key}.maxNewTokens = {MaxNewTokens}: must be positive";
        if (Preset == SuitePreset.Lambada && Type != SuiteType.Cloze)
            yield return $"{key}.preset = lambada: only for type cloze";
        if (Preset == SuitePreset.Hellaswag && Type != SuiteType.MultipleChoice)
            yield return $"{key}.preset = hellaswag: only for type multipleChoice";
        foreach (var (field, source) in Fields ?? [])
            if (string.IsNullOrWhiteSpace(source)) yield return $"{key}.fields.{field}: must name a field of the file";
    }
}
