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

    public IEnumerable<string> Validate(string key)
    {
        if (string.IsNullOrWhiteSpace(Name)) yield return $"{key}.name: every suite needs a name";
        if (string.IsNullOrWhiteSpace(Path)) yield return $"{key}.path: every suite needs a JSON-lines file";
        if (Limit < 0) yield return $"{key}.limit = {Limit}: must be 0 (all) or more";
        if (MaxNewTokens <= 0) yield return $"{key}.maxNewTokens = {MaxNewTokens}: must be positive";
    }
}
