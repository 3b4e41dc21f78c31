using System.Globalization;
using Forgetless.Configuration;
using Forgetless.Peft;

namespace Forgetless.FineTuning;

/// <summary>How the base model is adapted. DoRA and rsLoRA are switches of <c>lora</c> (and <c>qlora</c>).</summary>
public enum FineTuneMethod { Full, Freeze, Lora, Qlora, Adapter, Prefix }

/// <summary>Anti-forgetting terms added to the task loss; any subset, with any method.</summary>
public enum RegularizerKind { Ewc, L2sp, Kd }

/// <summary>
/// The <c>finetune</c> section of forgetless.json. Every key is documented in docs/finetune.md; the defaults
/// are the embedded default run (LoRA r8 on q,v over the prepared CMUdict + replay mix), sized to finish in a
/// few minutes on a 2-core CPU.
/// </summary>
public sealed class FineTuneOptions : IValidatableOptions
{
    public FineTuneMethod Method { get; set; } = FineTuneMethod.Lora;
    public List<RegularizerKind> Regularizers { get; set; } = [];

    /// <summary>Optimizer steps (each of <see cref="GradientAccumulation"/> micro-batches).</summary>
    public int Steps { get; set; } = 160;
    /// <summary>Non-padding tokens per micro-batch: whole sequences are added while they fit (at least one).</summary>
    public int TokensPerBatch { get; set; } = 2048;
    public int GradientAccumulation { get; set; } = 1;
    public double LearningRate { get; set; } = 2e-3;
    public int WarmupSteps { get; set; } = 20;
    public double MinLrRatio { get; set; } = 0.1;
    /// <summary>AdamW decoupled weight decay on 2-D tensors (never on norms, biases, DoRA magnitudes).</summary>
    public double WeightDecay { get; set; }
    public double ClipNorm { get; set; } = 1.0;

    public int LogEvery { get; set; } = 10;
    /// <summary>Validation task loss and held-out general-text loss every this many steps (and at the end).</summary>
    public int EvalEvery { get; set; } = 40;
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
    /// <summary>Write the adapter of the evaluation with the best validation task loss instead of the last step's.</summary>
    public bool KeepBest { get; set; } = true;

    /// <summary>Start from an earlier adapter folder of the same method (sequential tasks; online EWC).</summary>
    public string? InitAdapter { get; set; }
    /// <summary>Also write <c>merged/</c>: the base model with the adapter folded in (lora, full, freeze).</summary>
    public bool Merge { get; set; }

    public LoraSection Lora { get; set; } = new();
    public FreezeSection Freeze { get; set; } = new();
    public QLoraSection Qlora { get; set; } = new();
    public AdapterSection Adapter { get; set; } = new();
    public PrefixSection Prefix { get; set; } = new();
    public EwcSection Ewc { get; set; } = new();
    public L2SpSection L2sp { get; set; } = new();
    public KdSection Kd { get; set; } = new();

    public sealed class LoraSection
    {
        public int R { get; set; } = 8;
        public double Alpha { get; set; } = 16;
        public double Dropout { get; set; }
        /// <summary>PEFT target_modules as a list of names (suffix match).</summary>
        public List<string> TargetModules { get; set; } = ["q_proj", "v_proj"];
        /// <summary>PEFT target_modules as a full-match regex; when set it replaces <see cref="TargetModules"/>.</summary>
        public string? TargetRegex { get; set; }
        public List<int>? LayersToTransform { get; set; }
        public bool UseRsLora { get; set; }
        public bool UseDora { get; set; }
    }

    public sealed class FreezeSection
    {
        /// <summary>Bottom layers frozen (embeddings are always frozen by this method).</summary>
        public int Layers { get; set; } = 2;
    }

    public sealed class QLoraSection
    {
        public bool DoubleQuant { get; set; } = true;
    }

    public sealed class AdapterSection
    {
        public int Size { get; set; } = 16;
        public AdapterActivation Activation { get; set; } = AdapterActivation.Gelu;
        /// <summary>Outputs the bottleneck follows: o_proj (after attention) and down_proj (after the MLP).</summary>
        public List<string> TargetModules { get; set; } = ["o_proj", "down_proj"];
    }

    public sealed class PrefixSection
    {
        public int VirtualTokens { get; set; } = 16;
        /// <summary>Reparameterise through an MLP (PEFT prefix_projection).</summary>
        public bool Projection { get; set; }
        public int EncoderHiddenSize { get; set; } = 128;
    }

    public sealed class EwcSection
    {
        public double Lambda { get; set; } = 100;
        /// <summary>Replay/general rows (or held-out windows when there are none) for the diagonal Fisher.</summary>
        public int Samples { get; set; } = 32;
        /// <summary>Online EWC decay of an earlier run's Fisher when starting from <c>initAdapter</c>.</summary>
        public double Gamma { get; set; } = 0.9;
    }

    public sealed class L2SpSection
    {
        public double Lambda { get; set; } = 1e-3;
    }

    public sealed class KdSection
    {
        public double Weight { get; set; } = 0.5;
        public double Temperature { get; set; } = 2.0;
    }

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
        if (string.IsNullOrWhiteSpace(Heldout)) yield return "heldout: must name a text file of general text";
        if (Regularizers.Distinct().Count() != Regularizers.Count) yield return $"regularizers = [{string.Join(", ", Regularizers)}]: lists a regularizer twice";

        bool loraLike = Method is FineTuneMethod.Lora or FineTuneMethod.Qlora;
        if (loraLike)
        {
            if (Lora.R <= 0) yield return $"lora.r = {Lora.R}: must be a positive whole number";
            if (!(Lora.Alpha > 0)) yield return $"lora.alpha = {F(Lora.Alpha)}: must be greater than 0";
            if (Lora.Dropout is < 0 or >= 1 || double.IsNaN(Lora.Dropout)) yield return $"lora.dropout = {F(Lora.Dropout)}: must be in [0, 1)";
            if (string.IsNullOrEmpty(Lora.TargetRegex) && Lora.TargetModules.Count == 0)
                yield return "lora.targetModules: is empty; name the projections to adapt (e.g. [q_proj, v_proj]) or set lora.targetRegex";
            if (!string.IsNullOrEmpty(Lora.TargetRegex))
            {
                string? problem = null;
                try { _ = new System.Text.RegularExpressions.Regex(Lora.TargetRegex); }
                catch (ArgumentException e) { problem = e.Message; }
                if (problem is not null) yield return $"lora.targetRegex = '{Lora.TargetRegex}': not a valid regular expression ({problem})";
                if (Lora.LayersToTransform is not null) yield return "lora.layersToTransform: works only with lora.targetModules, not with lora.targetRegex (as in PEFT)";
            }
        }
        if (Method == FineTuneMethod.Freeze && Freeze.Layers < 0) yield return $"freeze.layers = {Freeze.Layers}: must be 0 or more";
        if (Method == FineTuneMethod.Adapter)
        {
            if (Adapter.Size <= 0) yield return $"adapter.size = {Adapter.Size}: must be a positive whole number";
            if (Adapter.TargetModules.Count == 0) yield return "adapter.targetModules: is empty; expected e.g. [o_proj, down_proj]";
        }
        if (Method == FineTuneMethod.Prefix)
        {
            if (Prefix.VirtualTokens <= 0) yield return $"prefix.virtualTokens = {Prefix.VirtualTokens}: must be a positive whole number";
            if (Prefix.Projection && Prefix.EncoderHiddenSize <= 0) yield return $"prefix.encoderHiddenSize = {Prefix.EncoderHiddenSize}: must be positive with prefix.projection";
        }
        if (Merge && Method is FineTuneMethod.Prefix or FineTuneMethod.Adapter or FineTuneMethod.Qlora)
            yield return $"merge = true: cannot be used with method {Name(Method)} " + Method switch
            {
                FineTuneMethod.Prefix => "(prefix tuning adds attention keys; there is no weight to fold it into)",
                FineTuneMethod.Adapter => "(a bottleneck adapter is a non-linear layer; it cannot be folded into a weight)",
                _ => "(the base is NF4; train with method lora to merge, or apply the adapter to the f32 base)",
            };
        if (Regularizers.Contains(RegularizerKind.Ewc))
        {
            if (!(Ewc.Lambda > 0)) yield return $"ewc.lambda = {F(Ewc.Lambda)}: must be greater than 0";
            if (Ewc.Samples <= 0) yield return $"ewc.samples = {Ewc.Samples}: must be a positive whole number";
            if (Ewc.Gamma is < 0 or > 1 || double.IsNaN(Ewc.Gamma)) yield return $"ewc.gamma = {F(Ewc.Gamma)}: must be in [0, 1]";
        }
        if (Regularizers.Contains(RegularizerKind.L2sp) && !(L2sp.Lambda > 0)) yield return $"l2sp.lambda = {F(L2sp.Lambda)}: must be greater than 0";
        if (Regularizers.Contains(RegularizerKind.Kd))
        {
            if (!(Kd.Weight > 0) || Kd.Weight > 1) yield return $"kd.weight = {F(Kd.Weight)}: must be in (0, 1] (loss = (1 − w)·CE + w·KD on replay rows)";
            if (!(Kd.Temperature > 0)) yield return $"kd.temperature = {F(Kd.Temperature)}: must be greater than 0";
        }
    }

    /// <summary>The PEFT-style target description of the lora section.</summary>
    public ModuleTargets LoraTargets() => !string.IsNullOrEmpty(Lora.TargetRegex)
        ? ModuleTargets.FullMatch(Lora.TargetRegex)
        : new ModuleTargets { Names = Lora.TargetModules.ToArray(), LayersToTransform = Lora.LayersToTransform?.ToArray() };

    public LoraOptions LoraOptions(long seed) => new()
    {
        R = Lora.R, Alpha = Lora.Alpha, Dropout = Lora.Dropout, UseRsLora = Lora.UseRsLora, UseDora = Lora.UseDora, Seed = seed,
    };

    public static string Name(FineTuneMethod method) => method.ToString().ToLowerInvariant();

    private static string F(double v) => v.ToString(CultureInfo.InvariantCulture);
}
