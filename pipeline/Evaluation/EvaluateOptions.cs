using System.Text.Json;
using System.Text.Json.Serialization;

namespace Forgetless.Evaluation;

/// <summary>
/// The <c>evaluate</c> section of forgetless.json: which suites to score on base and candidate, which
/// gates a release must pass, and how the statistics are run. Paths are relative to the pipeline file.
/// </summary>
public sealed class EvaluateOptions : Configuration.IValidatableOptions
{
    public List<SuiteOptions> Suites { get; set; } = [];

    public List<GateOptions> Gates { get; set; } = [];

    /// <summary>Default decision of every gate: non-inferiority (the default), the interval rule, or the point estimate (see <see cref="GateDecision"/>).</summary>
    public GateDecision Decision { get; set; } = GateDecision.NonInferiority;

    /// <summary>Decision <c>interval</c> only: false — a gate fails only when the whole interval is past the threshold; true — when any of it is.</summary>
    public bool AnyOfInterval { get; set; }

    /// <summary>Coverage of the bootstrap intervals.</summary>
    public double Confidence { get; set; } = 0.95;

    public int BootstrapResamples { get; set; } = Bootstrap.DefaultResamples;

    /// <summary>Seed of the bootstrap; null: <c>run.seed</c>.</summary>
    public int? Seed { get; set; }

    /// <summary>Items (perplexity, cloze) or rows (scorer) per forward pass.</summary>
    public int BatchSize { get; set; } = 8;

    /// <summary>Generations shown side by side (base | candidate) in the reports, per generation suite.</summary>
    public int SampleGenerations { get; set; } = 5;

    /// <summary>Which upstream stage's <c>adapter/</c> is the candidate: empty = distill when enabled, else finetune.</summary>
    public string Candidate { get; set; } = "";

    /// <summary>An adapter folder to evaluate instead of an upstream stage's output (standalone use, CI of a given adapter).</summary>
    public string Adapter { get; set; } = "";

    /// <summary>Base model folder; empty: <c>run.baseModel</c>.</summary>
    public string BaseModel { get; set; } = "";

    /// <summary>Reuse base-model item scores from the run root's .cache/ when the model, suite file and suite options are unchanged.</summary>
    public bool CacheBase { get; set; } = true;

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        for (int i = 0; i < Suites.Count; i++) errors.AddRange(Suites[i].Validate($"suites[{i}]"));
        foreach (var dup in Suites.GroupBy(s => s.Name).Where(g => g.Count() > 1))
            errors.Add($"suites: the name '{dup.Key}' is used {dup.Count()} times; suite names must be unique");
        var names = Suites.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        for (int i = 0; i < Gates.Count; i++)
        {
            errors.AddRange(Gates[i].Validate($"gates[{i}]"));
            if (Gates[i].Suite.Length > 0 && !names.Contains(Gates[i].Suite))
            {
                string? guess = Configuration.NearestName.Find(Gates[i].Suite, names);
                errors.Add($"gates[{i}].suite: no suite named '{Gates[i].Suite}'" + (guess is not null ? $" — did you mean '{guess}'?" : $"; suites: {string.Join(", ", names)}"));
            }
        }
        if (AnyOfInterval && Decision != GateDecision.Interval)
            errors.Add($"anyOfInterval = true: applies to decision interval only, but decision is {Name(Decision)}");
        for (int i = 0; i < Gates.Count; i++)
            if (Gates[i].AnyOfInterval is true && (Gates[i].Decision ?? Decision) != GateDecision.Interval)
                errors.Add($"gates[{i}].anyOfInterval = true: applies to decision interval only, but the gate's decision is {Name(Gates[i].Decision ?? Decision)}");
        if (Confidence is <= 0 or >= 1) errors.Add($"confidence = {Confidence}: must be between 0 and 1, e.g. 0.95");
        if (BootstrapResamples < 100) errors.Add($"bootstrapResamples = {BootstrapResamples}: use at least 100");
        if (BatchSize < 1) errors.Add($"batchSize = {BatchSize}: must be positive");
        if (SampleGenerations < 0) errors.Add($"sampleGenerations = {SampleGenerations}: must be 0 or more");
        if (Candidate is not ("" or "finetune" or "distill")) errors.Add($"candidate = '{Candidate}': expected finetune, distill, or empty (automatic)");
        return errors;
    }

    IEnumerable<string> Configuration.IValidatableOptions.Validate() => Validate();

    private static string Name(GateDecision d) => JsonNamingPolicy.CamelCase.ConvertName(d.ToString());

    /// <summary>Canonical JSON (camelCase, enums as names): what the run store fingerprints.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };
}
