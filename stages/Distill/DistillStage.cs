using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Forgetless.Configuration;
using Forgetless.Data;
using Forgetless.Distill;
using Forgetless.FineTuning;
using Forgetless.Model;
using Forgetless.Model.Tokenizers;
using Forgetless.Training.Terms;
using Forgetless.Runs;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.Distill;

/// <summary>
/// The distill stage, top to bottom: load the base model and put FineTune's adapter on it (trainable again, same
/// method), check the teacher's tokenizer, score the replay rows with the teacher once (cached by teacher, rows, k
/// and T), measure KL to the teacher and the task loss, train (1 − α)·CE(task) + α·T²·D(teacher ‖ student) on
/// replay rows with FineTune's resumable trainer, measure again, and write the consolidated adapter in the format
/// FineTune wrote it, so evaluate and package read it unchanged. Engine pieces: <c>Forgetless.Distillation</c>.
/// </summary>
public sealed class DistillStage(DistillOptions options, FineTuneOptions finetune, string baseModelDirectory, string? teacherDirectory,
    string heldoutPath, long seed, string runRoot, DeviceChoice device = DeviceChoice.Auto) : IStage
{
    public string Name => "distill";

    private string Teacher => teacherDirectory ?? baseModelDirectory;

    public void DeclareInputs(StageInputs inputs)
    {
        inputs.Upstream("prepare")
            .Upstream("finetune")
            .Directory("baseModel", baseModelDirectory)
            .File("distill.heldout", heldoutPath)
            .Value("config:distill", PipelineConfig.Canonical(options))
            .Value("config:finetune.method", PipelineConfig.Canonical(new { method = finetune.Method, sections = finetune.MethodSections, weightDecay = finetune.WeightDecay }))
            .Value("seed", seed.ToString(CultureInfo.InvariantCulture))
            .Value("torch.threads", TorchSharp.torch.get_num_threads().ToString(CultureInfo.InvariantCulture));
        if (teacherDirectory is not null) inputs.Directory("distill.teacher", teacherDirectory);
    }

    public Task<StageOutcome> RunAsync(StageRun run, CancellationToken cancellationToken) =>
        Task.Run(() => Run(run, cancellationToken), cancellationToken);

    private StageOutcome Run(StageRun run, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var log = run.Logger;
        DeviceSelector.Select(device, log); // CPU, as finetune
        TorchSharp.torch.random.manual_seed(seed);
        var training = options.Training(finetune.WeightDecay);

        string upstreamAdapter = Path.Combine(run.UpstreamOutput("finetune"), "adapter");
        if (!Directory.Exists(upstreamAdapter))
            throw new UserInputException($"distill: {upstreamAdapter} does not exist; run `forgetless finetune` first");
        var loaded = ModelFolder.Load(baseModelDirectory);
        var tokenizer = loaded.Tokenizer ?? throw new UserInputException($"{baseModelDirectory}: the base model folder has no tokenizer");
        using var tuned = finetune.Apply(loaded.Model, seed, upstreamAdapter);

        string prepared = run.UpstreamOutput("prepare");
        var trainRows = PreparedBatches.Read(Path.Combine(prepared, PreparedDataset.TrainFileName), cancellationToken: cancellationToken);
        var validationAll = PreparedBatches.Read(Path.Combine(prepared, PreparedDataset.ValidationFileName), cancellationToken: cancellationToken);
        var replay = trainRows.Select((row, index) => (Index: index, Row: row)).Where(r => r.Row.IsReplay).ToList();
        if (replay.Count == 0)
            throw new UserInputException("distill: train.parquet has no replay rows (kind replay or generated) to distill on; set prepare.replaySources or turn distill off");
        if (options.TeacherRows > 0) replay = replay.Take(options.TeacherRows).ToList();
        var task = trainRows.Select((row, index) => (Index: index, Row: row)).Where(r => !r.Row.IsReplay).ToList();
        if (options.TaskRows > 0) task = task.Take(options.TaskRows).ToList();
        var rows = replay.Concat(task).OrderBy(r => r.Index).Select(r => r.Row).ToList();

        var teacherLoaded = teacherDirectory is null ? null : ModelFolder.Load(teacherDirectory);
        using var teacher = teacherLoaded?.Model ?? ModelFolder.LoadModel(baseModelDirectory);
        foreach (var p in teacher.parameters()) p.requires_grad = false;
        teacher.eval();
        if (teacherLoaded is not null)
        {
            var teacherTokenizer = teacherLoaded.Tokenizer ?? throw new UserInputException($"distill.teacher = {teacherDirectory}: the folder has no tokenizer");
            var probes = new[] { "The quick brown fox jumps over the lazy dog. 0123456789 \"quoted\", (brackets) & more!" }
                .Concat(replay.Take(4).Select(r => tokenizer.Decode(r.Row.InputIds.Take(r.Row.Length))));
            TeacherAgreement.CheckSameTokenizer(tokenizer, tuned.Model.Config.VocabSize, teacherTokenizer, teacher.Config.VocabSize, teacherDirectory!, probes);
        }

        var pass = TeacherPass.Ensure(Path.Combine(runRoot, ".cache"), Teacher, teacher, replay, options.TopK, options.Temperature,
            options.TeacherBatchRows, log, cancellationToken);
        var targets = new CachedTeacherTargets(TeacherPass.Read(pass.Directory, cancellationToken), trainRows, pass.TopK, options.Temperature);

        var validation = LossProbe.TaskRows(validationAll, options.ValidationSequences);
        var validationReplay = validationAll.Where(r => r.IsReplay).Take(options.ValidationSequences).ToList();
        var heldout = LossProbe.HeldoutRows(heldoutPath, tokenizer, options.HeldoutWindows, options.HeldoutWindowLength, tuned.Model.Config.MaxPositionEmbeddings);
        double klHeldoutBefore = TeacherAgreement.MeanKl(tuned.Model, teacher, heldout);
        double klReplayBefore = TeacherAgreement.MeanKl(tuned.Model, teacher, validationReplay);
        log.LogInformation("distill: {Replay} replay rows with teacher targets, {Task} task rows; KL to teacher on held-out text {Kl:F4} before",
            replay.Count, task.Count, klHeldoutBefore);

        // The objective: (1 − α)·CE on task rows, α·T²·D(teacher ‖ student) on replay rows (no CE there).
        TrainingTerm[] terms = [new TaskLoss(taskRowWeight: 1 - options.Alpha, replayRowWeight: 0), new CachedKd(targets, options.Kd, options.Alpha)];
        var result = new Trainer(training, tuned, new PreparedBatches(rows, options.TokensPerBatch, seed), new LossProbe(validation, heldout), terms, log)
            { StageName = Name }.Run(run.WorkDirectory, cancellationToken);
        double klHeldoutAfter = TeacherAgreement.MeanKl(tuned.Model, teacher, heldout);
        double klReplayAfter = TeacherAgreement.MeanKl(tuned.Model, teacher, validationReplay);

        tuned.Method.Save(tuned, Path.Combine(run.OutputDirectory, "adapter"), baseModelDirectory);
        string metricsPath = Path.Combine(run.OutputDirectory, MetricsLog.FileName);
        File.Copy(Path.Combine(run.WorkDirectory, MetricsLog.FileName), metricsPath);
        new MetricsLog(metricsPath).Append(new()
        {
            ["step"] = result.Steps,
            ["kl_to_teacher_heldout_before"] = R(klHeldoutBefore), ["kl_to_teacher_heldout_after"] = R(klHeldoutAfter),
            ["kl_to_teacher_val_replay_before"] = R(klReplayBefore), ["kl_to_teacher_val_replay_after"] = R(klReplayAfter),
            ["val_task_loss_before"] = R(result.ValidationLossBefore), ["val_task_loss_after"] = R(result.ValidationLossAfter),
        });
        LossCurve.Draw(metricsPath, Path.Combine(run.OutputDirectory, LossCurve.FileName), $"distill: {finetune.Method}");

        var summary = new Dictionary<string, object?>
        {
            ["method"] = finetune.Method,
            ["teacher"] = teacherDirectory is null ? "base model" : teacherDirectory,
            ["divergence"] = JsonNamingPolicy.CamelCase.ConvertName(options.Divergence.ToString()),
            ["alpha"] = options.Alpha,
            ["temperature"] = options.Temperature,
            ["beta"] = options.Divergence == Training.KdDivergence.GeneralizedJsd ? options.Beta : null,
            ["topK"] = pass.TopK,
            ["teacherPassKey"] = pass.Key,
            ["teacherPassReused"] = pass.Reused,
            ["teacherRows"] = pass.Rows,
            ["teacherTokens"] = pass.Tokens,
            ["teacherPassSeconds"] = pass.Seconds,
            ["teacherTokensPerSecond"] = pass.TokensPerSecond,
            ["teacherMeanTailMass"] = pass.MeanTailMass,
            ["taskRows"] = task.Count,
            ["steps"] = result.Steps,
            ["tokens"] = result.Tokens,
            ["resumedFromStep"] = result.ResumedFromStep,
            ["klToTeacherHeldoutBefore"] = R(klHeldoutBefore),
            ["klToTeacherHeldoutAfter"] = R(klHeldoutAfter),
            ["klToTeacherValidationReplayBefore"] = double.IsNaN(klReplayBefore) ? null : R(klReplayBefore),
            ["klToTeacherValidationReplayAfter"] = double.IsNaN(klReplayAfter) ? null : R(klReplayAfter),
            ["validationTaskLossBefore"] = R(result.ValidationLossBefore),
            ["validationTaskLossAfter"] = R(result.ValidationLossAfter),
            ["heldoutLossBefore"] = R(result.HeldoutLossBefore),
            ["heldoutLossAfter"] = R(result.HeldoutLossAfter),
            ["trainableParameters"] = tuned.TrainableParameters,
            ["peakRssBytes"] = Process.GetCurrentProcess().PeakWorkingSet64,
            ["trainSeconds"] = Math.Round(result.WallSeconds, 1),
            ["wallSeconds"] = Math.Round(clock.Elapsed.TotalSeconds, 1),
        };
        AtomicFile.WriteAllText(Path.Combine(run.OutputDirectory, "summary.json"),
            JsonSerializer.Serialize(summary, new JsonSerializerOptions { WriteIndented = true }) + "\n");
        log.LogInformation("distill: {Steps} steps; KL to teacher on held-out text {KlBefore:F4} → {KlAfter:F4}, validation task loss {VBefore:F4} → {VAfter:F4}",
            result.Steps, klHeldoutBefore, klHeldoutAfter, result.ValidationLossBefore, result.ValidationLossAfter);
        return StageOutcome.Done(summary);
    }

    private static double R(double v) => Math.Round(v, 5);
}
