using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Forgetless.Configuration;
using Forgetless.Data;
using Forgetless.Distill;
using Forgetless.FineTuning;
using Forgetless.Model;
using Forgetless.Model.Tokenizers;
using Forgetless.Runs;
using Forgetless.Training.Terms;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.Distill;

/// <summary>
/// The distill stage, top to bottom: load the base model and put FineTune's adapter on it (trainable again, same
/// method), check the teacher's tokenizer, score the replay rows with the teacher once (cached by teacher, rows, k
/// and T), measure KL to the teacher and the task loss, train (1 − α)·CE(task) + α·T²·D(teacher ‖ student) on
/// replay rows with FineTune's resumable trainer, measure again, and write the consolidated adapter in the format
/// FineTune wrote it, so evaluate and package read it unchanged. Engine pieces: <c>Forgetless.Distillation</c>.
/// </summary>
public sealed class DistillStage(StageContext context, DistillOptions options, FineTuneOptions finetune) : IStage
{
    public string Name => "distill";

    /// <summary>The teacher's folder when it is not the base model.</summary>
    private string? TeacherFolder => options.Teacher.Length > 0 && context.Resolve(options.Teacher) is var t && t != context.BaseModel ? t : null;
    private string Teacher => TeacherFolder ?? context.BaseModel;
    private string Heldout => context.Resolve(options.Heldout);

    public void DeclareInputs(StageInputs inputs)
    {
        inputs.Upstream("prepare")
            .Upstream("finetune")
            .Value("config.distill", PipelineConfig.Canonical(options))
            // The method (and its sections) the finetune adapter is continued with; finetune's terms do not matter here.
            .Value("config.finetune.method", PipelineConfig.Canonical(new { method = finetune.Method, sections = finetune.MethodSections, weightDecay = finetune.WeightDecay }))
            .File("distill.heldout", Heldout);
        context.DeclareTraining(inputs);
        if (TeacherFolder is { } teacher) inputs.Directory("distill.teacher", teacher);
    }

    public Task<StageOutcome> RunAsync(StageRun run, CancellationToken cancellationToken) =>
        NativeHeap.RunInMainArena(() => Run(run, cancellationToken));

    private StageOutcome Run(StageRun run, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var log = run.Logger;
        var placement = context.Placement(log);
        long seed = context.Seed;
        TorchSharp.torch.random.manual_seed(seed);
        var training = options.Training(finetune.WeightDecay);

        string upstreamAdapter = Path.Combine(run.UpstreamOutput("finetune"), "adapter");
        if (!Directory.Exists(upstreamAdapter))
            throw new UserInputException($"distill: {upstreamAdapter} does not exist; run `forgetless finetune` first");
        var (model, tokenizer) = StageContext.WithTokenizer(finetune.LoadBase(context.BaseModel, placement), context.BaseModel, "distill");
        using var tuned = finetune.Apply(model, seed, upstreamAdapter, placement);

        var data = TrainingData.Read(run.UpstreamOutput("prepare"), options.ValidationSequences, cancellationToken);
        var trainRows = data.Train;
        var replay = trainRows.Select((row, index) => (Index: index, Row: row)).Where(r => r.Row.IsReplay).ToList();
        if (replay.Count == 0)
            throw new UserInputException("distill: train.parquet has no replay rows (kind replay or generated) to distill on; set prepare.replaySources or turn distill off");
        if (options.TeacherRows > 0) replay = replay.Take(options.TeacherRows).ToList();
        var task = trainRows.Select((row, index) => (Index: index, Row: row)).Where(r => !r.Row.IsReplay).ToList();
        if (options.TaskRows > 0) task = task.Take(options.TaskRows).ToList();
        var rows = replay.Concat(task).OrderBy(r => r.Index).Select(r => r.Row).ToList();

        var teacherLoaded = TeacherFolder is null ? null : ModelFolder.Load(TeacherFolder, placement: placement);
        using var teacher = teacherLoaded?.Model ?? ModelFolder.LoadModel(context.BaseModel, placement);
        foreach (var p in teacher.parameters()) p.requires_grad = false;
        teacher.eval();
        if (teacherLoaded is not null)
        {
            var teacherTokenizer = teacherLoaded.Tokenizer ?? throw new UserInputException($"distill.teacher = {TeacherFolder}: the folder has no tokenizer");
            var probes = new[] { "The quick brown fox jumps over the lazy dog. 0123456789 \"quoted\", (brackets) & more!" }
                .Concat(replay.Take(4).Select(r => tokenizer.Decode(r.Row.InputIds.Take(r.Row.Length))));
            TeacherAgreement.CheckSameTokenizer(tokenizer, tuned.Model.Config.VocabSize, teacherTokenizer, teacher.Config.VocabSize, TeacherFolder!, probes);
        }

        var pass = TeacherPass.Ensure(context.CacheDirectory, Teacher, teacher, replay, options.TopK, options.Temperature,
            options.TeacherBatchRows, log, cancellationToken);
        var targets = new CachedTeacherTargets(TeacherPass.Read(pass.Directory, cancellationToken), trainRows, pass.TopK, options.Temperature);

        var validation = data.Validation;
        var validationReplay = data.ValidationAll.Where(r => r.IsReplay).Take(options.ValidationSequences).ToList();
        var heldout = LossProbe.HeldoutRows(Heldout, tokenizer, options.HeldoutWindows, options.HeldoutWindowLength, tuned.Model.ContextLength);
        double klHeldoutBefore = TeacherAgreement.MeanKl(tuned.Model, teacher, heldout);
        double klReplayBefore = TeacherAgreement.MeanKl(tuned.Model, teacher, validationReplay);
        log.LogInformation("distill: {Replay} replay rows with teacher targets, {Task} task rows; KL to teacher on held-out text {Kl:F4} before",
            replay.Count, task.Count, klHeldoutBefore);

        // The objective: (1 − α)·CE on task rows, α·T²·D(teacher ‖ student) on replay rows (no CE there).
        TrainingTerm[] terms = [new TaskLoss(taskRowWeight: 1 - options.Alpha, replayRowWeight: 0), new CachedKd(targets, options.Kd, options.Alpha)];
        var result = new Trainer(training with { LossScaling = placement.LossScaling }, tuned, new PreparedBatches(rows, options.TokensPerBatch, seed),
                new LossProbe(validation, heldout), terms, log)
            { StageName = Name, Tensorboard = context.Tensorboard(Name) }.Run(run.WorkDirectory, cancellationToken);
        double klHeldoutAfter = TeacherAgreement.MeanKl(tuned.Model, teacher, heldout);
        double klReplayAfter = TeacherAgreement.MeanKl(tuned.Model, teacher, validationReplay);

        tuned.Method.Save(tuned, Path.Combine(run.OutputDirectory, "adapter"), context.BaseModel);
        MetricsLog.Publish(run, $"distill: {finetune.Method}", new()
        {
            ["step"] = result.Steps,
            ["kl_to_teacher_heldout_before"] = R(klHeldoutBefore), ["kl_to_teacher_heldout_after"] = R(klHeldoutAfter),
            ["kl_to_teacher_val_replay_before"] = R(klReplayBefore), ["kl_to_teacher_val_replay_after"] = R(klReplayAfter),
            ["val_task_loss_before"] = R(result.ValidationLossBefore), ["val_task_loss_after"] = R(result.ValidationLossAfter),
        });

        var summary = new DistillSummary(TrainingSummary.Of(result, tuned, clock))
        {
            Teacher = TeacherFolder ?? "base model",
            Divergence = options.Divergence,
            Alpha = options.Alpha,
            Temperature = options.Temperature,
            Beta = options.Divergence == Training.KdDivergence.GeneralizedJsd ? options.Beta : null,
            TopK = pass.TopK,
            TeacherPassKey = pass.Key,
            TeacherPassReused = pass.Reused,
            TeacherRows = pass.Rows,
            TeacherTokens = pass.Tokens,
            TeacherPassSeconds = pass.Seconds,
            TeacherTokensPerSecond = pass.TokensPerSecond,
            TeacherMeanTailMass = pass.MeanTailMass,
            TaskRows = task.Count,
            KlToTeacherHeldoutBefore = TrainingSummary.Loss(klHeldoutBefore),
            KlToTeacherHeldoutAfter = TrainingSummary.Loss(klHeldoutAfter),
            KlToTeacherValidationReplayBefore = TrainingSummary.Loss(klReplayBefore),
            KlToTeacherValidationReplayAfter = TrainingSummary.Loss(klReplayAfter),
        };
        OutputJson.Write(Path.Combine(run.OutputDirectory, TrainingSummary.FileName), summary);
        log.LogInformation("distill: {Steps} steps; KL to teacher on held-out text {KlBefore:F4} → {KlAfter:F4}, validation task loss {VBefore:F4} → {VAfter:F4}",
            result.Steps, klHeldoutBefore, klHeldoutAfter, result.ValidationLossBefore, result.ValidationLossAfter);
        return StageOutcome.Done(OutputJson.ToMetrics(summary));
    }

    private static double R(double v) => Math.Round(v, 5);
}
