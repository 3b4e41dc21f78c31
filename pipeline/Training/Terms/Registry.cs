using Forgetless.Configuration;
using Forgetless.FineTuning;
using Forgetless.Peft;
using Microsoft.Extensions.Logging;

namespace Forgetless.Training.Terms;

/// <summary>
/// The anti-forgetting terms a pipeline file can name in <c>finetune.regularizers</c>, each with its config section
/// (<c>finetune.NAME</c>) and a factory. Adding a term is one file under pipeline/Training/Terms/ and one line here
/// (see docs/extending.md). Terms a stage composes itself (the task loss, Distill's cached teacher) are not listed.
/// </summary>
public static class TrainingTerms
{
    /// <summary>
    /// A registered term: its name in <c>finetune.regularizers</c>, its section type, how to build it, and the method its
    /// benchmark case trains with (a term that needs a particular method names it).
    /// </summary>
    /// <param name="ReadsLogits">Whether the term reads the whole logits (as <see cref="TrainingTerm.ReadsLogits"/>), known before loading for the memory estimate.</param>
    public sealed record Entry(string Name, string Summary, Type Section, Func<TermContext, TrainingTerm> Create, string BenchmarkMethod = "lora",
        bool ReadsLogits = false);

    public static IReadOnlyList<Entry> All { get; } =
    [
        new("ewc", "elastic weight consolidation: λ/2·Σ F (θ − θ*)², diagonal Fisher per token on replay rows; online across runs", typeof(EwcSection), Ewc.Create),
        new("l2sp", "L2-SP: λ·Σ ‖θ − θ₀‖² toward the starting values (base weights) or zero (adapter tensors)", typeof(L2SpSection), L2Sp.Create),
        new("kd", "distillation against the live base model on replay rows: (1 − w)·CE + w·KL·T²", typeof(KdSection), Kd.Create, ReadsLogits: true),
        new("si", "synaptic intelligence: c·Σ Ω (θ − θ*)², importance Ω accumulated along the training path", typeof(SiSection), Si.Create),
        new("orthogonality", "O-LoRA: λ·Σ ‖A_prev·Aᵀ‖², the new LoRA block kept out of earlier tasks' subspace (method olora)", typeof(OrthogonalitySection), Orthogonality.Create,
            BenchmarkMethod: "olora"),
    ];

    public static IEnumerable<string> Names => All.Select(t => t.Name);

    public static Entry? Find(string name) => All.FirstOrDefault(t => t.Name == name);

    public static IReadOnlyDictionary<string, Type> SectionTypes { get; } = All.ToDictionary(t => t.Name, t => t.Section, StringComparer.Ordinal);

    /// <summary>
    /// FineTune's objective: the task loss and every configured term, in the order the pipeline file lists them. The
    /// task loss weighs replay rows by what the other terms leave of their cross-entropy.
    /// </summary>
    public static IReadOnlyList<TrainingTerm> Compose(IEnumerable<string> regularizers, Func<Entry, TermContext> context)
    {
        var terms = new List<TrainingTerm>();
        try
        {
            foreach (var name in regularizers)
            {
                var entry = Find(name) ?? throw new ConfigException(UnknownTerm(name));
                var term = entry.Create(context(entry));
                terms.Add(term);
                // The entry says it before any term exists (the memory estimate), the term while training (the trainer):
                // a term registered with one and built with the other would make the two disagree about the logits.
                if (term.ReadsLogits != entry.ReadsLogits)
                    throw new InvalidOperationException(
                        $"term '{name}': its ReadsLogits ({term.ReadsLogits}) differs from its registry entry's ({entry.ReadsLogits}); set both alike");
            }
            double share = terms.Sum(t => t.ReplayCrossEntropyShare);
            return [new TaskLoss(taskRowWeight: 1, replayRowWeight: 1 - share), .. terms];
        }
        catch
        {
            foreach (var t in terms) t.Dispose();
            throw;
        }
    }

    public static string UnknownTerm(string name)
    {
        string? guess = NearestName.Find(name, Names);
        return $"finetune.regularizers: '{name}' is not a registered term" + (guess is not null ? $" — did you mean '{guess}'?" : "") +
               $"; registered: {string.Join(", ", Names)}";
    }
}

/// <summary>What a term's factory can use: the tuned model, its section, the data and where to cache.</summary>
public sealed class TermContext
{
    public required TunedModel Tuned { get; init; }
    /// <summary>The term's bound section (<c>finetune.NAME</c>).</summary>
    public required object Options { get; init; }
    public required string BaseModelDirectory { get; init; }
    /// <summary>Training rows that stand for old abilities (replay or generated text).</summary>
    public required IReadOnlyList<PreparedRow> ReplayRows { get; init; }
    /// <summary>Training rows of the task this run learns (what a term protecting it for later runs looks at).</summary>
    public IReadOnlyList<PreparedRow> TaskRows { get; init; } = [];
    /// <summary>Turns a path from the configuration into a full one (relative to the pipeline file).</summary>
    public Func<string, string> ResolvePath { get; init; } = Path.GetFullPath;
    /// <summary>Fixed windows of held-out general text (used where the data has no replay rows).</summary>
    public required IReadOnlyList<PreparedRow> HeldoutRows { get; init; }
    /// <summary>The run root's cache folder (shared by runs; keys are content hashes).</summary>
    public required string CacheDirectory { get; init; }
    /// <summary>The adapter folder the run continues from (<c>finetune.initAdapter</c>), with what earlier terms left there.</summary>
    public string? InitAdapter { get; init; }
    public required ILogger Logger { get; init; }
    /// <summary>Where the run's tensors live (a term that loads a model, like kd's teacher, loads it there).</summary>
    public Model.Devices.Placement Placement { get; init; } = Model.Devices.Placement.Cpu;

    public T Section<T>() where T : class => Options as T
        ?? throw new InvalidOperationException($"the term's section is a {Options.GetType().Name}, not a {typeof(T).Name}");
}
