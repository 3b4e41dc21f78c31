using System.Globalization;
using System.Text.Json.Serialization;
using Forgetless.Configuration;
using Forgetless.Peft;
using Forgetless.Training.Terms;

namespace Forgetless.FineTuning;

/// <summary>
/// The <c>finetune</c> section of forgetless.json. Every key is documented in docs/finetune.md; the defaults
/// are the embedded default run (LoRA r8 on q,v over the prepared CMUdict + replay mix), sized to finish in a
/// few minutes on a 2-core CPU. The sections of the methods and terms (<c>finetune.lora</c>, <c>finetune.ewc</c>, …)
/// belong to their plug-ins (<see cref="PeftMethods"/>, <see cref="TrainingTerms"/>) and are held in <see cref="Plugins"/>.
/// </summary>
public sealed class FineTuneOptions : IValidatableOptions, IHasPluginSections
{
    /// <summary>A registered method's name (<see cref="PeftMethods"/>).</summary>
    public string Method { get; set; } = "lora";
    /// <summary>Registered terms added to the task loss, in this order (<see cref="TrainingTerms"/>).</summary>
    public List<string> Regularizers { get; set; } = [];

    public int Steps { get; set; } = 160;
    public int TokensPerBatch { get; set; } = 2048;
    public int GradientAccumulation { get; set; } = 1;
    public double LearningRate { get; set; } = 2e-3;
    public int WarmupSteps { get; set; } = 20;
    public double MinLrRatio { get; set; } = 0.1;
    /// <summary>AdamW decoupled weight decay on 2-D tensors (never on norms, biases, DoRA magnitudes).</summary>
    public double WeightDecay { get; set; }
    public double ClipNorm { get; set; } = 1.0;

    [Configuration.DoesNotChangeResults] // logs only; the stage's results do not depend on it
    public int LogEvery { get; set; } = 10;
    /// <summary>Validation task loss and held-out general-text loss every this many steps (and at the end).</summary>
    public int EvalEvery { get; set; } = 40;
    [Configuration.DoesNotChangeResults] // a resumed run ends with the bytes of an uninterrupted one
    public int CheckpointEvery { get; set; } = 20;
    /// <summary>Validation sequences scored at each evaluation (the first ones of validation.parquet; task rows only when there are any).</summary>
    public int ValidationSequences { get; set; } = 32;

    /// <summary>General text for the old-task (forgetting) loss: fixed, evenly spaced windows.</summary>
    public string Heldout { get; set; } = "data/corpora/heldout.txt";
    public int HeldoutWindows { get; set; } = 16;
    public int HeldoutWindowLength { get; set; } = 256;

    /// <summary>Stop after this many evaluations without a better validation task loss (0: never).</summary>
    public int EarlyStoppingPatience { get; set; }
    /// <summary>Stop as soon as the validation task loss is at or below this (0: off) — compare methods at equal learning.</summary>
    public double TargetValidationLoss { get; set; }
    /// <summary>
    /// Stop as soon as the held-out task accuracy is at or above this (0: off): <see cref="TargetAccuracyMetric"/> of the
    /// evaluate suite <see cref="TargetAccuracySuite"/> on its first <see cref="TargetAccuracyItems"/> items, at every evaluation.
    /// Left out of the fingerprint while unset (as are the three keys after it), so runs without it keep theirs.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public double TargetAccuracy { get; set; }
    /// <summary>The evaluate suite whose accuracy <see cref="TargetAccuracy"/> is (unset: the first suite of role new that has one).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? TargetAccuracySuite { get; set; }
    /// <summary>The suite's rate metric (unset: <c>acc</c>).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? TargetAccuracyMetric { get; set; }
    /// <summary>How many of the suite's first items are scored at each evaluation (unset: 100).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? TargetAccuracyItems { get; set; }

    /// <summary>Write the adapter of the evaluation with the best validation task loss instead of the last step's.</summary>
    public bool KeepBest { get; set; } = true;

    /// <summary>Recompute each decoder layer in backward instead of keeping its activations (less memory, about 1/3 more compute).</summary>
    public bool GradientCheckpointing { get; set; }

    /// <summary>
    /// auto | on | off: whether the task loss projects the hidden states to the vocabulary a few positions at a time
    /// instead of making the whole logits [tokens, vocabulary] (Liger Kernel's fused linear cross-entropy; equal to the
    /// unfused loss up to float rounding). auto: when a micro-batch's logits would exceed 128 MB and no term (kd) reads them.
    /// </summary>
    // Left out of the stage's fingerprint while auto: on the embedded default auto is the unchunked path runs had before the
    // key existed, so they stay up to date.
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public global::Forgetless.Training.ChunkedLoss ChunkedLoss { get; set; } = global::Forgetless.Training.ChunkedLoss.Auto;

    /// <summary>Start from an earlier adapter folder of the same method (sequential tasks; online EWC, SI).</summary>
    public string? InitAdapter { get; set; }
    /// <summary>Also write <c>merged/</c>: the base model with the adapter folded in (methods that can merge).</summary>
    public bool Merge { get; set; }

    /// <summary>Every registered method's and term's section, bound from <c>finetune.NAME</c>.</summary>
    [JsonIgnore]
    public PluginSections Plugins { get; } = new(SectionTypes);

    /// <summary>Sections of every registered method and term.</summary>
    public static IReadOnlyDictionary<string, Type> SectionTypes { get; } =
        PeftMethods.SectionTypes.Concat(TrainingTerms.SectionTypes).ToDictionary(StringComparer.Ordinal);

    /// <summary>The chosen method (the name is checked by <see cref="Validate"/>).</summary>
    [JsonIgnore]
    public PeftMethod MethodPlugin => PeftMethods.Get(Method);

    /// <summary>The chosen method applied to a freshly loaded base model (continuing <paramref name="initAdapter"/> when given).</summary>
    public TunedModel Apply(Model.CausalLM model, long seed, string? initAdapter = null, Model.Devices.Placement? placement = null) =>
        MethodPlugin.Apply(model, Plugins, seed, initAdapter, placement);

    /// <summary>
    /// The base model folder loaded for this method on <paramref name="placement"/> (qlora quantizes while it loads),
    /// with <see cref="GradientCheckpointing"/> set.
    /// </summary>
    public Model.LoadedModel LoadBase(string folder, Model.Devices.Placement placement)
    {
        var loaded = Model.ModelFolder.Load(folder, placement: placement, loader: MethodPlugin.BaseLoader(Plugins));
        loaded.Model.GradientCheckpointing = GradientCheckpointing;
        return loaded;
    }

    /// <summary>
    /// The sections that can change this run's result — the chosen method's and the enabled terms' — as the stage
    /// fingerprints them; the sections of methods and terms not in use do not make the stage stale.
    /// </summary>
    public SortedDictionary<string, object> ActiveSections
    {
        get
        {
            var active = MethodSections;
            foreach (var term in Regularizers.Where(TrainingTerms.SectionTypes.ContainsKey)) active[term] = Plugins[term];
            return active;
        }
    }

    /// <summary>The chosen method's sections alone (what a stage that continues this method's adapter depends on).</summary>
    [JsonIgnore]
    public SortedDictionary<string, object> MethodSections
    {
        get
        {
            var sections = new SortedDictionary<string, object>(StringComparer.Ordinal);
            if (PeftMethods.Exists(Method))
                foreach (var (name, _) in MethodPlugin.Sections) sections[name] = Plugins[name];
            return sections;
        }
    }

    [JsonIgnore]
    public TrainingOptions Training => new()
    {
        Steps = Steps, TokensPerBatch = TokensPerBatch, GradientAccumulation = GradientAccumulation, LearningRate = LearningRate,
        ChunkedLoss = ChunkedLoss, WarmupSteps = WarmupSteps, MinLrRatio = MinLrRatio, WeightDecay = WeightDecay, ClipNorm = ClipNorm, LogEvery = LogEvery,
        EvalEvery = EvalEvery, CheckpointEvery = CheckpointEvery, KeepBest = KeepBest, EarlyStoppingPatience = EarlyStoppingPatience,
        TargetValidationLoss = TargetValidationLoss, TargetAccuracy = TargetAccuracy,
    };

    public IEnumerable<string> Validate()
    {
        foreach (var (name, value) in new[]
                 {
                     ("steps", Steps), ("tokensPerBatch", TokensPerBatch), ("gradientAccumulation", GradientAccumulation),
                     ("logEvery", LogEvery), ("evalEvery", EvalEvery), ("checkpointEvery", CheckpointEvery),
                     ("validationSequences", ValidationSequences), ("heldoutWindows", HeldoutWindows), ("heldoutWindowLength", HeldoutWindowLength),
                 })
            if (value <= 0) yield return $"{name} = {value}: must be a positive whole number";
        if (!(LearningRate > 0)) yield return $"learningRate = {F(LearningRate)}: must be greater than 0";
        if (WarmupSteps < 0) yield return $"warmupSteps = {WarmupSteps}: must be 0 or more";
        if (MinLrRatio is < 0 or > 1 || double.IsNaN(MinLrRatio)) yield return $"minLrRatio = {F(MinLrRatio)}: must be in [0, 1]";
        if (WeightDecay < 0 || double.IsNaN(WeightDecay)) yield return $"weightDecay = {F(WeightDecay)}: must be 0 or more";
        if (!(ClipNorm > 0)) yield return $"clipNorm = {F(ClipNorm)}: must be greater than 0";
        if (EarlyStoppingPatience < 0) yield return $"earlyStoppingPatience = {EarlyStoppingPatience}: must be 0 (off) or more";
        if (TargetValidationLoss < 0 || double.IsNaN(TargetValidationLoss)) yield return $"targetValidationLoss = {F(TargetValidationLoss)}: must be 0 (off) or more";
        if (TargetAccuracy is < 0 or > 1 || double.IsNaN(TargetAccuracy)) yield return $"targetAccuracy = {F(TargetAccuracy)}: must be 0 (off) or a rate in (0, 1]";
        if (TargetAccuracyItems <= 0) yield return $"targetAccuracyItems = {TargetAccuracyItems}: must be a positive whole number";
        if (TargetAccuracyMetric is not null && !AccuracyTarget.AllRates.Contains(TargetAccuracyMetric))
            yield return $"targetAccuracyMetric = '{TargetAccuracyMetric}': must be one of {string.Join(", ", AccuracyTarget.AllRates)}";
        if (string.IsNullOrWhiteSpace(Heldout)) yield return "heldout: must name a text file of general text";

        if (!PeftMethods.Exists(Method))
        {
            yield return PeftMethods.UnknownMethod(Method)["finetune.".Length..];
        }
        else
        {
            foreach (var error in MethodPlugin.Validate(Plugins)) yield return error;
            if (Merge && MethodPlugin.MergeRefusal is { } why) yield return $"merge = true: cannot be used with method {Method} ({why})";
        }

        if (Regularizers.Distinct().Count() != Regularizers.Count) yield return $"regularizers = [{string.Join(", ", Regularizers)}]: lists a term twice";
        foreach (var term in Regularizers)
        {
            if (TrainingTerms.Find(term) is null) { yield return TrainingTerms.UnknownTerm(term)["finetune.".Length..]; continue; }
            if (Plugins[term] is IValidatableOptions section)
                foreach (var error in section.Validate()) yield return term + "." + error;
        }
    }

    private static string F(double v) => v.ToString(CultureInfo.InvariantCulture);
}
