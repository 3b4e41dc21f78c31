using System.Diagnostics;
using Forgetless.Configuration;
using Forgetless.Data;
using Forgetless.FineTuning;
using Forgetless.Peft;
using Forgetless.Runs;
using Forgetless.Training.Terms;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.FineTune;

/// <summary>
/// The finetune stage, top to bottom: load the base model, apply the method, read the prepared batches and the
/// fixed evaluation sets, compose the objective (the task loss and the configured terms), train (resumable), then
/// write the adapter with what the terms leave beside it, the metrics, the loss curve and summary.json. The engine
/// pieces live in <c>Forgetless.Peft</c>, <c>Forgetless.Training.Terms</c> and <c>Forgetless.FineTuning</c>.
/// </summary>
public sealed class FineTuneStage(StageContext context, FineTuneOptions options) : IStage
{
    public string Name => "finetune";

    private string Heldout => context.Resolve(options.Heldout);
    private string? InitAdapter => options.InitAdapter is { Length: > 0 } init ? context.Resolve(init) : null;

    /// <summary>The held-out accuracy to stop at (finetune.targetAccuracy over an evaluate suite); checked when the stage is built.</summary>
    private readonly AccuracyTarget? accuracyTarget = AccuracyTarget.Of(options, context.Section<Evaluation.EvaluateOptions>("evaluate"), context.Resolve);

    public void DeclareInputs(StageInputs inputs)
    {
        inputs.Upstream("prepare")
            .Value("config.finetune", PipelineConfig.Canonical(options))
            .File("finetune.heldout", Heldout);
        context.DeclareTraining(inputs);
        if (InitAdapter is { } init) inputs.Directory("finetune.initAdapter", init);
        if (accuracyTarget is { } target)
            inputs.File("finetune.targetAccuracySuite", target.Path).Value("config.finetune.targetAccuracySuite", PipelineConfig.Canonical(target.Suite));
        foreach (var section in options.ActiveSections.Values.OfType<IDeclaresInputFolders>())
            foreach (var (key, folder) in section.InputFolders(context.Resolve))
                inputs.Directory(key, folder);
    }

    public Task<StageOutcome> RunAsync(StageRun run, CancellationToken cancellationToken) =>
        NativeHeap.RunInMainArena(() => Run(run, cancellationToken));

    private StageOutcome Run(StageRun run, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var log = run.Logger;
        var placement = context.Placement(log);
        TorchSharp.torch.random.manual_seed(context.Seed);
        int seqLen = context.Section<PrepareOptions>("prepare").SeqLen;
        var estimate = MemoryCheck.Before(options, context.BaseModel, placement, context.Run.MaxMemoryGb, log, seqLen);

        var loading = Stopwatch.StartNew();
        var (model, tokenizer) = StageContext.WithTokenizer(options.LoadBase(context.BaseModel, placement), context.BaseModel, "finetune");
        double loadSeconds = loading.Elapsed.TotalSeconds;
        log.LogInformation("finetune: base model loaded in {Seconds:F1} s ({Device}, {Type})", loadSeconds, placement.Device.type, placement.ComputeType);
        using var tuned = options.Apply(model, context.Seed, InitAdapter, placement);
        log.LogInformation("finetune: method {Method}, {Trainable:N0} of {Total:N0} parameters train; regularizers [{Regs}]",
            options.Method, tuned.TrainableParameters, tuned.TotalParameters, string.Join(", ", options.Regularizers));

        var data = TrainingData.Read(run.UpstreamOutput("prepare"), options.ValidationSequences, cancellationToken);
        var heldout = LossProbe.HeldoutRows(Heldout, tokenizer, options.HeldoutWindows, options.HeldoutWindowLength, tuned.Model.ContextLength);
        if (data.Validation.Count == 0) log.LogWarning("finetune: validation.parquet has no rows; no validation loss, best-checkpoint keeping or early stopping");
        var batches = new PreparedBatches(data.Train, options.TokensPerBatch, context.Seed);

        var replay = data.Train.Where(r => r.IsReplay).ToList();
        var terms = TrainingTerms.Compose(options.Regularizers, term => new TermContext
        {
            Tuned = tuned, Options = options.Plugins[term.Name], BaseModelDirectory = context.BaseModel, ReplayRows = replay, HeldoutRows = heldout,
            TaskRows = data.Train.Where(r => !r.IsReplay).ToList(), CacheDirectory = context.CacheDirectory, InitAdapter = InitAdapter, Logger = log,
            ResolvePath = context.Resolve, Placement = placement,
        });
        string adapter = Path.Combine(run.OutputDirectory, "adapter");
        TrainingResult result;
        try
        {
            var probe = new LossProbe(data.Validation, heldout, MemoryCheck.ProbeRows(options.TokensPerBatch, seqLen)) { ChunkedLoss = options.ChunkedLoss };
            result = new Trainer(options.Training with { LossScaling = placement.LossScaling }, tuned, batches, probe, terms, log)
                {
                    Tensorboard = context.Tensorboard(Name),
                    HeldoutAccuracy = accuracyTarget is { } target ? m => target.Measure(m, tokenizer, cancellationToken) : null,
                }.Run(run.WorkDirectory, cancellationToken);
            tuned.Method.Save(tuned, adapter, context.BaseModel);
            foreach (var term in terms) term.WriteArtifacts(adapter);
        }
        finally
        {
            foreach (var term in terms) term.Dispose();
        }
        if (options.Merge) MergedModel.Write(adapter, context.BaseModel, Path.Combine(run.OutputDirectory, "merged"), "finetune.merge");
        MetricsLog.Publish(run, $"finetune: {options.Method}");

        var summary = new FineTuneSummary(TrainingSummary.Of(result, tuned, clock))
        {
            Regularizers = options.Regularizers,
            StopReason = result.StopReason,
            BestValidationTaskLoss = TrainingSummary.Loss(result.BestValidationLoss),
            BestHeldoutTaskAccuracy = double.IsNaN(result.BestAccuracy) ? null : Math.Round(result.BestAccuracy, 5),
            BestStep = result.BestStep,
            TotalParameters = tuned.TotalParameters,
            LoadSeconds = Math.Round(loadSeconds, 2),
            EstimatedPeakBytes = estimate.TotalBytes,
            MethodFacts = tuned.Method.Facts(tuned).ToDictionary(),
        };
        OutputJson.Write(Path.Combine(run.OutputDirectory, TrainingSummary.FileName), summary);
        log.LogInformation("finetune: {Steps} steps ({Stop}); validation task loss {VBefore:F4} → {VAfter:F4}, held-out loss {HBefore:F4} → {HAfter:F4}",
            result.Steps, result.StopReason, result.ValidationLossBefore, result.ValidationLossAfter, result.HeldoutLossBefore, result.HeldoutLossAfter);
        return StageOutcome.Done(OutputJson.ToMetrics(summary));
    }
}
