using System.Diagnostics;
using System.Globalization;
using Forgetless.Model.Devices;
using Forgetless.Peft;
using Forgetless.Progress;
using Forgetless.Training;
using Forgetless.Training.Terms;
using Microsoft.Extensions.Logging;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.FineTuning;

/// <summary>What a training run did; the numbers of summary.json.</summary>
public sealed record TrainingResult
{
    public long Steps { get; init; }
    public long Tokens { get; init; }
    public double BestValidationLoss { get; init; }
    /// <summary>The best held-out task accuracy of the evaluations (NaN when <see cref="Trainer.HeldoutAccuracy"/> is not set).</summary>
    public double BestAccuracy { get; init; } = double.NaN;
    public long BestStep { get; init; }
    public double ValidationLossBefore { get; init; }
    public double ValidationLossAfter { get; init; }
    public double HeldoutLossBefore { get; init; }
    public double HeldoutLossAfter { get; init; }
    public string StopReason { get; init; } = "steps";
    public long ResumedFromStep { get; init; }
    public double WallSeconds { get; init; }
}

/// <summary>A loss or gradient that is NaN or infinite; the run stops and keeps its last good checkpoint.</summary>
public sealed class NonFiniteLossException(string message) : Exception(message);

/// <summary>
/// The training loop: token-budget batches, gradient accumulation, AdamW with warm-up + cosine, clipping, the sum of
/// the objective's named <see cref="TrainingTerm"/>s (each logged under its name), validation task loss and held-out general loss every <c>evalEvery</c> steps (best weights
/// kept, early stopping, a stop at a target validation loss), metrics as JSON lines, and an atomic checkpoint every
/// <c>checkpointEvery</c> steps and on cancellation. Everything that decides the next step — trainable tensors,
/// optimizer moments, every random generator, the data position, the best weights so far, the stopping counters and
/// every term's state — is in the checkpoint, so a resumed run ends with the same bytes as an uninterrupted one.
/// </summary>
public sealed class Trainer(TrainingOptions options, TunedModel tuned, PreparedBatches batches, LossProbe probe, IReadOnlyList<TrainingTerm> terms, ILogger logger)
{
    public const string CheckpointFile = "checkpoint.safetensors";

    private readonly Dictionary<string, Tensor> best = new(StringComparer.Ordinal);
    private readonly LossScaler scaler = options.LossScaling ? LossScaler.ForF16() : LossScaler.Disabled;

    /// <summary>The stage that trains, for log lines and the progress bar (the Distill stage reuses this loop).</summary>
    public string StageName { get; init; } = "finetune";

    /// <summary>Where the metrics also go as TensorBoard scalars (<c>run.tensorboard</c>); null: only metrics.jsonl.</summary>
    public Runs.TensorboardLog? Tensorboard { get; init; }

    /// <summary>
    /// The held-out task accuracy of the model (<see cref="AccuracyTarget"/>), measured with the losses at every
    /// evaluation when set; <see cref="TrainingOptions.TargetAccuracy"/> stops at it. Null: not measured.
    /// </summary>
    public Func<Model.CausalLM, double>? HeldoutAccuracy { get; init; }

    /// <summary>Test seam: runs after every completed step with its number.</summary>
    internal Action<long>? AfterStep { get; init; }

    public TrainingResult Run(string workDirectory, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var model = tuned.Model;
        var trainable = tuned.Trainable;
        string checkpoint = Path.Combine(workDirectory, CheckpointFile);
        var metrics = new MetricsLog(Path.Combine(workDirectory, MetricsLog.FileName));
        using var optimizer = AdamWOptimizer.ForParameters(trainable, new AdamWOptions { LearningRate = options.LearningRate, WeightDecay = options.WeightDecay });
        var schedule = new WarmupCosineSchedule(options.WarmupSteps, options.Steps, options.MinLrRatio);
        nn.Module generatorOwner = model; // LoRA dropout generators live in the model

        var state = new LoopState();
        if (TrainingCheckpoint.Resumable(checkpoint, logger, StageName) is { } intact)
        {
            var restored = TrainingCheckpoint.Load(intact, trainable, optimizer, generatorOwner);
            state = LoopState.From(restored);
            scaler.Restore(restored.Metadata ?? new Dictionary<string, string>());
            batches.Restore(restored.Sampler ?? throw new InvalidDataException($"{intact}: no sampler state"));
            RestoreExtras(intact);
            logger.LogInformation("{Stage}: resuming from step {Step} (checkpoint {Path})", StageName, state.Step, intact);
        }
        long resumedFrom = state.Step;
        metrics.TrimAfter(state.Step);

        model.train();
        if (state.Step == 0)
        {
            state.ValidationBefore = probe.ValidationLoss(model);
            state.HeldoutBefore = probe.HeldoutLoss(model);
            var first = new Dictionary<string, object?> { ["step"] = 0L, ["tokens"] = 0L, ["val_task_loss"] = R(state.ValidationBefore), ["heldout_loss"] = R(state.HeldoutBefore) };
            if (HeldoutAccuracy is { } accuracy)
            {
                first[AccuracyLogName] = R(accuracy(model));
                logger.LogInformation("{Stage}: before training — held-out task accuracy {Acc:F4}", StageName, first[AccuracyLogName]);
            }
            metrics.Append(first);
            Tensorboard?.Write(StageName, 0, first);
            // A loop with nothing to probe (Reptile's inner loops, benchmarks) has no "before" to tell.
            if (probe.ValidationRows + probe.HeldoutWindows > 0)
                logger.LogInformation("{Stage}: before training — validation task loss {Val:F4}, held-out loss {Heldout:F4}", StageName,
                    state.ValidationBefore, state.HeldoutBefore);
        }

        string stop = "steps";
        double lastVal = double.NaN, lastHeldout = double.NaN, lastAccuracy = double.NaN;
        using (var progress = new ProgressBar(StageName, options.Steps, "steps", alreadyDone: state.Step))
        using (NativeHeap.ReuseFreedBlocks()) // every step frees the tensors the next one makes again
        {
            var window = Stopwatch.StartNew();
            long windowTokens = 0;
            while (state.Step < options.Steps && state.Stop is null)
            {
                if (cancellationToken.IsCancellationRequested)
                {
                    Save(checkpoint, state, trainable, optimizer, generatorOwner);
                    logger.LogWarning("{Stage}: stopped at step {Step}; checkpoint saved, rerun to resume", StageName, state.Step);
                    cancellationToken.ThrowIfCancellationRequested();
                }
                double lr = options.LearningRate * schedule.Factor(state.Step);
                var step = TrainStep(optimizer, schedule.Factor(state.Step), state.Step + 1, checkpoint);
                state.Step++;
                state.Tokens += step.Tokens;
                windowTokens += step.Tokens;
                AfterStep?.Invoke(state.Step);

                bool evaluate = state.Step % options.EvalEvery == 0 || state.Step == options.Steps;
                if (evaluate)
                {
                    lastVal = probe.ValidationLoss(model);
                    lastHeldout = probe.HeldoutLoss(model);
                    if (HeldoutAccuracy is { } accuracy) lastAccuracy = accuracy(model);
                    Judge(state, lastVal, lastAccuracy, trainable);
                    logger.LogInformation("{Stage}: step {Step} — train loss {Loss:F4}, validation task loss {Val:F4}, held-out loss {Heldout:F4}{Accuracy}", StageName,
                        state.Step, step.Loss, lastVal, lastHeldout,
                        double.IsNaN(lastAccuracy) ? "" : string.Create(CultureInfo.InvariantCulture, $", held-out task accuracy {lastAccuracy:F4}"));
                }
                if (state.Step % options.LogEvery == 0 || evaluate || state.Stop is not null)
                {
                    var entry = new Dictionary<string, object?>
                    {
                        ["step"] = state.Step, ["tokens"] = state.Tokens, ["lr"] = lr, [TaskLoss.LoggedName] = R(step.Loss),
                        ["tokens_per_s"] = Math.Round(windowTokens / Math.Max(1e-9, window.Elapsed.TotalSeconds), 1),
                    };
                    foreach (var (name, value) in step.Terms) entry[name] = R(value);
                    if (evaluate) { entry["val_task_loss"] = R(lastVal); entry["heldout_loss"] = R(lastHeldout); }
                    if (evaluate && !double.IsNaN(lastAccuracy)) entry[AccuracyLogName] = R(lastAccuracy);
                    metrics.Append(entry);
                    Tensorboard?.Write(StageName, state.Step, entry);
                    window.Restart();
                    windowTokens = 0;
                }
                if (state.Step % options.CheckpointEvery == 0 && state.Step < options.Steps && state.Stop is null)
                    Save(checkpoint, state, trainable, optimizer, generatorOwner);
                string evalText = double.IsNaN(lastVal) ? "" : string.Create(CultureInfo.InvariantCulture, $" · val {lastVal:F3} · held-out {lastHeldout:F3}");
                progress.Report(state.Step, string.Create(CultureInfo.InvariantCulture, $"loss {step.Loss:F3}{evalText} · {progress.Rate * step.Tokens:F0} tok/s"));
            }
            stop = state.Stop ?? "steps";
        }

        // Reaching the target accuracy keeps the weights that reached it, whatever the validation loss did.
        bool restore = options.KeepBest && best.Count > 0 && state.BestStep != state.Step && stop != TargetAccuracyReason;
        if (restore)
        {
            using var _ = no_grad();
            foreach (var (name, p) in trainable) p.copy_(best[name]);
            logger.LogInformation("{Stage}: keeping the best weights (step {Step}, validation task loss {Loss:F4})", StageName, state.BestStep, state.BestLoss);
        }
        foreach (var t in best.Values) t.Dispose();
        best.Clear();
        double valAfter = restore || double.IsNaN(lastVal) ? probe.ValidationLoss(model) : lastVal;
        double heldAfter = restore || double.IsNaN(lastHeldout) ? probe.HeldoutLoss(model) : lastHeldout;
        model.eval();
        return new TrainingResult
        {
            Steps = state.Step,
            Tokens = state.Tokens,
            BestValidationLoss = double.IsInfinity(state.BestLoss) ? valAfter : state.BestLoss,
            BestAccuracy = state.BestAccuracy,
            BestStep = state.BestStep,
            ValidationLossBefore = state.ValidationBefore,
            ValidationLossAfter = valAfter,
            HeldoutLossBefore = state.HeldoutBefore,
            HeldoutLossAfter = heldAfter,
            StopReason = stop,
            ResumedFromStep = resumedFrom,
            WallSeconds = clock.Elapsed.TotalSeconds,
        };
    }

    /// <summary>A step's numbers: the task loss (unweighted mean cross-entropy) and every other term's reported value.</summary>
    private sealed record StepNumbers(double Loss, IReadOnlyList<(string Name, double Value)> Terms, long Tokens);

    private StepNumbers TrainStep(AdamWOptimizer optimizer, double lrFactor, long stepNumber, string checkpoint)
    {
        using var scope = NewDisposeScope();
        var model = tuned.Model;
        var device = model.Device;
        var microRows = Enumerable.Range(0, options.GradientAccumulation).Select(_ => batches.Next()).ToList();
        var micro = microRows.Select(rows => TokenBatch.Of(rows, device)).ToList();
        double targetTokens = Math.Max(1, micro.Sum(b => b.TargetTokens));
        // Every value the step reports stays on the device until one read after backward (one synchronisation per
        // step on a GPU): (term, what, value, divisor) in the order they were made.
        var values = new List<(string Term, string What, Tensor Value, double Divisor)>();
        long tokens = 0;
        for (int m = 0; m < micro.Count; m++)
        {
            var batch = micro[m];
            tokens += batch.Tokens;
            var termBatch = NewTermBatch(model, microRows[m], batch, targetTokens, micro.Count);
            Tensor? loss = null;
            foreach (var term in terms)
            {
                if (term.BatchLoss(termBatch) is not { } value) continue;
                loss = loss is null ? value.Loss : loss.add(value.Loss, Model.Scalars.One);
                values.Add((term.Name, "loss", value.Reported, value.Divisor));
            }
            if (loss is null) throw new InvalidOperationException($"{StageName}: no training term applies to the batch (the objective has no task loss)");
            values.Add(("", "loss", loss.detach(), 1));
            scaler.Scaled(loss).backward();
        }
        foreach (var term in terms) term.AfterBatchGradients();
        Tensor? penalty = null;
        foreach (var term in terms)
        {
            if (term.StepLoss() is not { } value) continue;
            penalty = penalty is null ? value.Loss : penalty.add(value.Loss, Model.Scalars.One);
            values.Add((term.Name, $"{term.Name} penalty", value.Reported, value.Divisor));
        }
        if (penalty is not null) scaler.Scaled(penalty).backward();
        var parameters = optimizer.Parameters.Select(p => p.parameter).ToList();
        Gradients.Unscale(parameters, scaler.Scale);
        var norm = Gradients.GlobalNorm(parameters);
        var read = HostValues.Scalars([.. values.Select(v => v.Value), .. norm is null ? Array.Empty<Tensor>() : [norm]]);
        var reported = new Dictionary<string, double>(StringComparer.Ordinal);
        for (int i = 0; i < values.Count; i++)
        {
            var (term, what, _, divisor) = values[i];
            // Read as f32 and widened exactly, then divided on the host, as the values were before they were batched.
            double value = (float)read[i] / divisor;
            if (!double.IsFinite(value) && !scaler.Enabled) throw NonFinite(stepNumber, what, checkpoint);
            if (term.Length == 0) continue;
            reported[term] = what == "loss" ? reported.GetValueOrDefault(term) + value : value;
        }
        float total = norm is null ? 0 : (float)read[^1];
        if (!scaler.Update(float.IsFinite(total)))
        {
            if (!scaler.Enabled) throw NonFinite(stepNumber, "gradient norm", checkpoint);
            logger.LogWarning("{Stage}: step {Step}: f16 gradients overflowed; step skipped, loss scale lowered to {Scale}", StageName, stepNumber, scaler.Scale);
        }
        else
        {
            Gradients.Clip(parameters, total, options.ClipNorm);
            optimizer.Step(lrFactor);
            foreach (var term in terms) term.AfterOptimizerStep();
        }
        optimizer.ZeroGrad();
        foreach (var b in micro) b.Dispose();
        double taskLoss = reported.GetValueOrDefault(TaskLoss.LoggedName, double.NaN);
        return new StepNumbers(taskLoss, terms.Where(t => t.Name != TaskLoss.LoggedName && reported.ContainsKey(t.Name))
            .Select(t => (t.Name, reported[t.Name])).ToList(), tokens);
    }

    /// <summary>
    /// A micro-batch for the terms: with the whole logits, or — when the task loss may project a chunk at a time
    /// (<see cref="ChunkedCrossEntropy.Applies"/>) — with the hidden states and the output weight, the logits made only
    /// if a term asks for them after all.
    /// </summary>
    private TermBatch NewTermBatch(Model.CausalLM model, IReadOnlyList<PreparedRow> rows, TokenBatch batch, double targetTokens, int microBatches)
    {
        var head = model.PlainOutputWeight;
        if (!ChunkedCrossEntropy.Applies(options.ChunkedLoss, batch.Inputs.numel(), model.Config.VocabSize, terms.Any(t => t.ReadsLogits), head is not null,
                headWidens: head is not null && head.dtype != model.ComputeType))
            return new TermBatch { Rows = rows, Tokens = batch, Logits = batch.Logits(model), StepTargetTokens = targetTokens, MicroBatches = microBatches };
        var hidden = batch.Hidden(model);
        return new TermBatch
        {
            Rows = rows, Tokens = batch, Hidden = hidden, OutputWeight = head, LogitsSource = () => model.LogitsOf(hidden),
            StepTargetTokens = targetTokens, MicroBatches = microBatches,
        };
    }

    private static NonFiniteLossException NonFinite(long step, string what, string checkpoint) => new(
        $"finetune: the {what} became NaN or infinite at step {step}; training stopped. " +
        (File.Exists(checkpoint) ? $"The last good checkpoint is kept in {checkpoint}. " : "No checkpoint had been written yet. ") +
        "Lower the learning rate (or the terms' weights), or check the data.");

    /// <summary>What metrics.jsonl calls the held-out task accuracy.</summary>
    public const string AccuracyLogName = "heldout_task_acc";
    /// <summary>The stop reason when <see cref="TrainingOptions.TargetAccuracy"/> was reached.</summary>
    public const string TargetAccuracyReason = "target_accuracy";

    /// <summary>Best-weights bookkeeping, early stopping and the targets (loss, accuracy) after an evaluation.</summary>
    private void Judge(LoopState state, double validation, double accuracy, IReadOnlyList<(string name, Parameter parameter)> trainable)
    {
        if (!double.IsNaN(accuracy))
        {
            if (double.IsNaN(state.BestAccuracy) || accuracy > state.BestAccuracy) state.BestAccuracy = accuracy;
            if (options.TargetAccuracy > 0 && accuracy >= options.TargetAccuracy)
            {
                state.Stop = TargetAccuracyReason;
                logger.LogInformation("{Stage}: held-out task accuracy {Acc:F4} reached the target {Target} at step {Step}", StageName, accuracy, options.TargetAccuracy, state.Step);
            }
        }
        if (double.IsNaN(validation)) return; // no validation rows: nothing to judge by
        if (validation < state.BestLoss)
        {
            state.BestLoss = validation;
            state.BestStep = state.Step;
            state.EvalsWithoutImprovement = 0;
            if (options.KeepBest)
            {
                foreach (var t in best.Values) t.Dispose();
                best.Clear();
                foreach (var (name, p) in trainable) best[name] = p.detach().clone().DetachFromDisposeScope();
            }
        }
        else
        {
            state.EvalsWithoutImprovement++;
        }
        if (state.Stop is not null) return;
        if (options.TargetValidationLoss > 0 && validation <= options.TargetValidationLoss)
        {
            state.Stop = "target_validation_loss";
            logger.LogInformation("{Stage}: validation task loss {Loss:F4} reached the target {Target} at step {Step}", StageName, validation, options.TargetValidationLoss, state.Step);
        }
        else if (options.EarlyStoppingPatience > 0 && state.EvalsWithoutImprovement >= options.EarlyStoppingPatience)
        {
            state.Stop = "early_stopping";
            logger.LogInformation("{Stage}: early stopping at step {Step}: {N} evaluations without a better validation task loss", StageName, state.Step, state.EvalsWithoutImprovement);
        }
    }

    private const string BestPrefix = "best/";
    private const string TermPrefix = "term/";

    /// <summary>The best weights so far (<c>best/NAME</c>) and every term's state (<c>term/TERM/KEY</c>) ride in the checkpoint.</summary>
    private void Save(string path, LoopState state, IReadOnlyList<(string name, Parameter parameter)> trainable, AdamWOptimizer optimizer, nn.Module generatorOwner)
    {
        var extras = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (k, v) in best) extras[BestPrefix + k] = v;
        foreach (var term in terms)
            foreach (var (k, v) in term.CheckpointState()) extras[$"{TermPrefix}{term.Name}/{k}"] = v;
        var metadata = state.ToMetadata();
        foreach (var (k, v) in scaler.ToMetadata()) metadata[k] = v;
        TrainingCheckpoint.Save(path, state.Step, trainable, optimizer, batches.State, generatorOwner, extras, metadata);
    }

    private void RestoreExtras(string checkpoint)
    {
        var extras = TrainingCheckpoint.ReadExtraTensors(checkpoint);
        try
        {
            foreach (var (k, v) in extras.Where(e => e.Key.StartsWith(BestPrefix, StringComparison.Ordinal)))
                best[k[BestPrefix.Length..]] = v.detach().clone().DetachFromDisposeScope();
            foreach (var term in terms)
            {
                string prefix = $"{TermPrefix}{term.Name}/";
                var state = extras.Where(e => e.Key.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(e => e.Key[prefix.Length..], e => e.Value, StringComparer.Ordinal);
                if (state.Count > 0 || term.CheckpointState().Count > 0) term.RestoreCheckpointState(state);
            }
        }
        finally
        {
            foreach (var t in extras.Values) t.Dispose();
        }
    }

    private static double R(double v) => Math.Round(v, 5);

    /// <summary>Loop counters saved in the checkpoint's metadata.</summary>
    private sealed class LoopState
    {
        public long Step;
        public long Tokens;
        public double BestLoss = double.PositiveInfinity;
        public long BestStep;
        public int EvalsWithoutImprovement;
        public double ValidationBefore = double.NaN;
        public double HeldoutBefore = double.NaN;
        public double BestAccuracy = double.NaN;
        public string? Stop;

        public Dictionary<string, string> ToMetadata() => new()
        {
            ["finetune.tokens"] = Tokens.ToString(CultureInfo.InvariantCulture),
            ["finetune.best_loss"] = BestLoss.ToString("R", CultureInfo.InvariantCulture),
            ["finetune.best_step"] = BestStep.ToString(CultureInfo.InvariantCulture),
            ["finetune.evals_without_improvement"] = EvalsWithoutImprovement.ToString(CultureInfo.InvariantCulture),
            ["finetune.validation_before"] = ValidationBefore.ToString("R", CultureInfo.InvariantCulture),
            ["finetune.heldout_before"] = HeldoutBefore.ToString("R", CultureInfo.InvariantCulture),
            ["finetune.best_accuracy"] = BestAccuracy.ToString("R", CultureInfo.InvariantCulture),
        };

        public static LoopState From(TrainingCheckpoint.Restored restored)
        {
            var m = restored.Metadata ?? new Dictionary<string, string>();
            double D(string k) => m.TryGetValue(k, out var v) ? double.Parse(v, CultureInfo.InvariantCulture) : double.NaN;
            long L(string k) => m.TryGetValue(k, out var v) ? long.Parse(v, CultureInfo.InvariantCulture) : 0;
            return new LoopState
            {
                Step = restored.Step,
                Tokens = L("finetune.tokens"),
                BestLoss = m.ContainsKey("finetune.best_loss") ? D("finetune.best_loss") : double.PositiveInfinity,
                BestStep = L("finetune.best_step"),
                EvalsWithoutImprovement = (int)L("finetune.evals_without_improvement"),
                ValidationBefore = D("finetune.validation_before"),
                HeldoutBefore = D("finetune.heldout_before"),
                BestAccuracy = D("finetune.best_accuracy"),
            };
        }
    }
}
