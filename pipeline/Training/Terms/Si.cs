using Forgetless.Model;
using System.Globalization;
using Forgetless.Configuration;
using Forgetless.FineTuning;
using Forgetless.Peft;
using Microsoft.Extensions.Logging;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Training.Terms;

/// <summary><c>finetune.si</c>.</summary>
public sealed class SiSection : IValidatableOptions
{
    /// <summary>c: strength of the penalty c·Σ Ω (θ − θ̃)².</summary>
    public double C { get; set; } = 1.0;
    /// <summary>ξ: damping of Ω = ω / (Δ² + ξ), so a parameter that barely moved does not get an infinite importance.</summary>
    public double Xi { get; set; } = 1e-3;
    /// <summary>
    /// Steps of the short path on replay rows that estimates the old abilities' importance when no earlier run left
    /// one (0: none; the penalty then starts with the next run of a sequence, as in Zenke et al.).
    /// </summary>
    public int PathSteps { get; set; } = 16;
    /// <summary>Learning rate of that path (AdamW, no weight decay).</summary>
    public double PathLearningRate { get; set; } = 1e-3;
    /// <summary>Replay rows per path step (held-out windows when the data has none).</summary>
    public int PathRows { get; set; } = 8;

    public IEnumerable<string> Validate()
    {
        if (!(C > 0)) yield return $"c = {F(C)}: must be greater than 0";
        if (!(Xi > 0)) yield return $"xi = {F(Xi)}: must be greater than 0";
        if (PathSteps < 0) yield return $"pathSteps = {PathSteps}: must be 0 (no path) or more";
        if (!(PathLearningRate > 0)) yield return $"pathLearningRate = {F(PathLearningRate)}: must be greater than 0";
        if (PathRows <= 0) yield return $"pathRows = {PathRows}: must be a positive whole number";
    }

    private static string F(double v) => v.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// Synaptic intelligence (Zenke, Poole and Ganguli 2017): while a task trains, each parameter's contribution to the
/// fall of the loss is accumulated along the path, ω_k = −Σ_t g_k(t)·Δθ_k(t) (g the gradient of the step's batch
/// losses, before penalties; Δθ the optimizer's update). At the end of the task the importance grows by
/// ω_k / (Δ_k² + ξ), Δ_k the parameter's total change, clamped at 0 (noisy minibatch gradients can make ω negative,
/// which would reward drifting). Later tasks pay c·Σ_k Ω_k (θ_k − θ̃_k)², θ̃ the values the earlier task ended with.
/// <para>
/// Ω comes from an earlier run of a sequence (its <c>forgetless_si.safetensors</c> beside the continued adapter), or —
/// for the first fine-tune of a pretrained model, whose pretraining path is unknown — from a short path of
/// <c>si.pathSteps</c> AdamW steps on replay rows from the starting values, which are then restored: the importance
/// of each parameter for the old data, estimated the SI way (as EWC estimates its Fisher on replay rows).
/// </para>
/// </summary>
public sealed class Si : TrainingTerm
{
    public const string StateFile = "forgetless_si.safetensors";

    private readonly IReadOnlyList<(string name, Parameter p)> parameters;
    private readonly Dictionary<string, Tensor> start = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Tensor> omega = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Tensor>? importance;
    private readonly double c, xi;
    private Dictionary<string, (Tensor grad, Tensor before)>? step;

    /// <param name="importance">Ω per parameter name (copied); null: no penalty in this run.</param>
    public Si(IReadOnlyList<(string name, Parameter parameter)> parameters, IReadOnlyDictionary<string, Tensor>? importance, double c, double xi)
    {
        this.parameters = parameters.Select(p => (p.name, p.parameter)).ToList();
        this.c = c;
        this.xi = xi;
        using (no_grad())
            foreach (var (name, p) in this.parameters)
            {
                start[name] = p.detach().clone().DetachFromDisposeScope();
                omega[name] = zeros_like(p).DetachFromDisposeScope();
            }
        if (importance is not null)
        {
            this.importance = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            foreach (var (name, p) in this.parameters)
                if (importance.TryGetValue(name, out var o))
                {
                    if (!o.shape.SequenceEqual(p.shape))
                        throw new ArgumentException($"SI: importance of '{name}' has shape [{string.Join(", ", o.shape)}], parameter [{string.Join(", ", p.shape)}].");
                    this.importance[name] = o.detach().to(p.device, copy: true).DetachFromDisposeScope();
                }
        }
    }

    public override string Name => "si";
    public override bool ReadsLogits => false;

    private Device Device => parameters[0].p.device;

    /// <summary>Ω the penalty uses (null when there is none).</summary>
    public IReadOnlyDictionary<string, Tensor>? Importance => importance;

    /// <summary>ω accumulated so far in this run.</summary>
    public IReadOnlyDictionary<string, Tensor> PathIntegral => omega;

    public static Si Create(TermContext context)
    {
        var section = context.Section<SiSection>();
        var tuned = context.Tuned;
        Dictionary<string, Tensor>? prior = null;
        var earlier = context.InitAdapter is null ? null : Path.Combine(context.InitAdapter, StateFile);
        if (earlier is not null && File.Exists(earlier))
        {
            var (saved, anchors) = Load(earlier);
            foreach (var a in anchors.Values) a.Dispose();
            prior = saved;
            context.Logger.LogInformation("finetune: SI — importance from the earlier run ({Path})", earlier);
        }
        else if (section.PathSteps > 0)
        {
            var rows = context.ReplayRows.Count > 0 ? context.ReplayRows : context.HeldoutRows;
            context.Logger.LogInformation("finetune: SI — importance of the old abilities along {Steps} steps on {Kind} rows", section.PathSteps,
                context.ReplayRows.Count > 0 ? "replay" : "held-out");
            prior = PathImportance(tuned, rows, section.PathSteps, section.PathRows, section.PathLearningRate, section.Xi);
        }
        else
        {
            context.Logger.LogInformation("finetune: SI — no earlier importance and si.pathSteps = 0: no penalty in this run; importance is accumulated for the next");
        }
        try
        {
            return new Si(tuned.Trainable, prior, section.C, section.Xi);
        }
        finally
        {
            foreach (var t in prior?.Values ?? Enumerable.Empty<Tensor>()) t.Dispose();
        }
    }

    public override void AfterBatchGradients()
    {
        step = new Dictionary<string, (Tensor, Tensor)>(StringComparer.Ordinal);
        foreach (var (name, p) in parameters)
            if (p.grad is { } g) step[name] = (g.detach().clone(), p.detach().clone());
    }

    public override TermValue? StepLoss()
    {
        if (importance is null || importance.Count == 0) return null;
        using var scope = NewDisposeScope();
        Tensor total = zeros(1, device: Device).squeeze();
        foreach (var (name, p) in parameters)
            if (importance.TryGetValue(name, out var o)) total = total.add(p.sub(start[name]).Squared().mul(o).sum(), Scalars.One);
        using var strength = c.ToScalar();
        var penalty = total.mul(strength).MoveToOuterDisposeScope();
        return new TermValue(penalty, penalty.detach().MoveToOuterDisposeScope());
    }

    public override void AfterOptimizerStep()
    {
        if (step is null) return;
        using (no_grad())
            foreach (var (name, p) in parameters)
                if (step.TryGetValue(name, out var s))
                {
                    using var moved = p.detach().sub(s.before);
                    using var contribution = s.grad.mul(moved);
                    omega[name].sub_(contribution);
                }
        foreach (var (g, b) in step.Values) { g.Dispose(); b.Dispose(); }
        step = null;
    }

    public override IReadOnlyDictionary<string, Tensor> CheckpointState() => omega;

    public override void RestoreCheckpointState(IReadOnlyDictionary<string, Tensor> state)
    {
        using var _ = no_grad();
        foreach (var (name, w) in omega)
        {
            if (!state.TryGetValue(name, out var saved) || !saved.shape.SequenceEqual(w.shape))
                throw new InvalidDataException($"the checkpoint has no SI path integral for '{name}' of shape [{string.Join(", ", w.shape)}]");
            w.copy_(saved);
        }
    }

    /// <summary>Ω + relu(ω / (Δ² + ξ)) and the trained values, for the next run of a sequence.</summary>
    public override void WriteArtifacts(string adapterFolder)
    {
        using var scope = NewDisposeScope();
        var total = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var anchors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, p) in parameters)
        {
            var now = p.detach();
            var gained = Consolidate(omega[name], now.sub(start[name]), xi);
            total[name] = importance is not null && importance.TryGetValue(name, out var o) ? o.add(gained, Scalars.One) : gained;
            anchors[name] = now;
        }
        Save(Path.Combine(adapterFolder, StateFile), total, anchors);
    }

    /// <summary>relu(ω / (Δ² + ξ)): the importance a finished path adds.</summary>
    public static Tensor Consolidate(Tensor omega, Tensor delta, double xi)
    {
        using var damping = xi.ToScalar(); // held through the call (Scalars' remarks)
        return omega.div(delta.Squared().add(damping, Scalars.One)).clamp_min(Scalars.Zero);
    }

    /// <summary>
    /// Ω of a short path from the current values: <paramref name="steps"/> AdamW steps (no weight decay) on
    /// <paramref name="rowsPerStep"/> rows at a time (cycling through <paramref name="rows"/> in order), in eval mode so no
    /// random generator is touched; the parameters are restored afterwards.
    /// </summary>
    public static Dictionary<string, Tensor> PathImportance(TunedModel tuned, IReadOnlyList<PreparedRow> rows, int steps, int rowsPerStep,
        double learningRate, double xi)
    {
        if (rows.Count == 0) throw new InvalidOperationException("SI: no rows to estimate the importance from");
        var model = tuned.Model;
        var trainable = tuned.Trainable;
        bool wasTraining = model.training;
        model.eval();
        var origin = Ewc.Snapshot(trainable);
        var omega = trainable.ToDictionary(t => t.name, t => zeros_like(t.parameter), StringComparer.Ordinal);
        try
        {
            using var optimizer = AdamWOptimizer.ForParameters(trainable, new AdamWOptions { LearningRate = learningRate, WeightDecay = 0 });
            for (int s = 0; s < steps; s++)
            {
                using var scope = NewDisposeScope();
                var chunk = Enumerable.Range(0, rowsPerStep).Select(i => rows[(s * rowsPerStep + i) % rows.Count]).ToList();
                using var batch = TokenBatch.Of(chunk, model.Device);
                optimizer.ZeroGrad();
                var nll = LossProbe.TokenNll(batch.Logits(model), batch.Targets);
                nll.mul(batch.TargetMask).sum().div(batch.TargetMask.sum().clamp_min(Scalars.One)).backward();
                var grads = trainable.Where(t => t.parameter.grad is not null)
                    .ToDictionary(t => t.name, t => (grad: t.parameter.grad!.detach().clone(), before: t.parameter.detach().clone()));
                optimizer.Step();
                using (no_grad())
                    foreach (var (name, p) in trainable)
                        if (grads.TryGetValue(name, out var g)) omega[name].sub_(g.grad.mul(p.detach().sub(g.before)));
            }
            optimizer.ZeroGrad();
            var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            using (no_grad())
                foreach (var (name, p) in trainable)
                {
                    using var delta = p.detach().sub(origin[name]);
                    result[name] = Consolidate(omega[name], delta, xi);
                }
            return result;
        }
        finally
        {
            using (no_grad())
                foreach (var (name, p) in trainable) p.copy_(origin[name]);
            foreach (var t in origin.Values.Concat(omega.Values)) t.Dispose();
            if (wasTraining) model.train();
        }
    }

    /// <summary>Saves importance and anchors (<c>importance/NAME</c>, <c>anchor/NAME</c>) for a later run.</summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> importance, IReadOnlyDictionary<string, Tensor> anchors) =>
        TermStateFile.Save(path, "si", new Dictionary<string, IReadOnlyDictionary<string, Tensor>> { ["importance"] = importance, ["anchor"] = anchors });

    public static (Dictionary<string, Tensor> importance, Dictionary<string, Tensor> anchors) Load(string path)
    {
        var groups = TermStateFile.Load(path, "importance", "anchor");
        return (groups["importance"], groups["anchor"]);
    }

    public override void Dispose()
    {
        foreach (var t in start.Values.Concat(omega.Values).Concat(importance?.Values ?? Enumerable.Empty<Tensor>())) t.Dispose();
        if (step is not null) foreach (var (g, b) in step.Values) { g.Dispose(); b.Dispose(); }
    }
}
