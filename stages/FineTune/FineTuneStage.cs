using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Forgetless.Configuration;
using Forgetless.Data;
using Forgetless.FineTuning;
using Forgetless.Model;
using Forgetless.Peft;
using Forgetless.Training.Terms;
using Forgetless.Runs;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.FineTune;

/// <summary>
/// The finetune stage, top to bottom: load the base model, apply the method, read the prepared batches and the
/// fixed evaluation sets, build the anti-forgetting terms, train (resumable), then write the adapter, the
/// metrics, the loss curve and summary.json. The engine pieces live in <c>Forgetless.FineTuning</c>.
/// </summary>
public sealed class FineTuneStage(FineTuneOptions options, string baseModelDirectory, string heldoutPath, long seed, string runRoot,
    string? initAdapter = null, DeviceChoice device = DeviceChoice.Auto) : IStage
{
    public string Name => "finetune";

    public void DeclareInputs(StageInputs inputs)
    {
        inputs.Upstream("prepare")
            .Directory("baseModel", baseModelDirectory)
            .File("finetune.heldout", heldoutPath)
            .Value("config:finetune", PipelineConfig.Canonical(options))
            .Value("seed", seed.ToString(CultureInfo.InvariantCulture))
            // Float sums, and so the exact bytes, depend on libtorch's thread count.
            .Value("torch.threads", TorchSharp.torch.get_num_threads().ToString(CultureInfo.InvariantCulture));
        if (initAdapter is not null) inputs.Directory("finetune.initAdapter", initAdapter);
    }

    public Task<StageOutcome> RunAsync(StageRun run, CancellationToken cancellationToken) =>
        Task.Run(() => Run(run, cancellationToken), cancellationToken);

    private StageOutcome Run(StageRun run, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var log = run.Logger;
        DeviceSelector.Select(device, log); // training runs on the CPU; CUDA placement is not wired yet (docs/finetune.md)
        TorchSharp.torch.random.manual_seed(seed);

        var loaded = ModelFolder.Load(baseModelDirectory);
        var tokenizer = loaded.Tokenizer ?? throw new UserInputException($"{baseModelDirectory}: the base model folder has no tokenizer");
        using var tuned = options.Apply(loaded.Model, seed, initAdapter);
        log.LogInformation("finetune: method {Method}, {Trainable:N0} of {Total:N0} parameters train; regularizers [{Regs}]",
            options.Method, tuned.TrainableParameters, tuned.TotalParameters, string.Join(", ", options.Regularizers));

        string prepared = run.UpstreamOutput("prepare");
        var trainRows = PreparedBatches.Read(Path.Combine(prepared, PreparedDataset.TrainFileName), cancellationToken: cancellationToken);
        var validation = LossProbe.TaskRows(PreparedBatches.Read(Path.Combine(prepared, PreparedDataset.ValidationFileName), cancellationToken: cancellationToken),
            options.ValidationSequences);
        var heldout = LossProbe.HeldoutRows(heldoutPath, tokenizer, options.HeldoutWindows, options.HeldoutWindowLength, tuned.Model.Config.MaxPositionEmbeddings);
        if (validation.Count == 0) log.LogWarning("finetune: validation.parquet has no rows; no validation loss, best-checkpoint keeping or early stopping");
        var batches = new PreparedBatches(trainRows, options.TokensPerBatch, seed);

        var replay = trainRows.Where(r => r.IsReplay).ToList();
        var terms = TrainingTerms.Compose(options.Regularizers, term => new TermContext
        {
            Tuned = tuned, Options = options.Plugins[term.Name], BaseModelDirectory = baseModelDirectory, ReplayRows = replay, HeldoutRows = heldout,
            CacheDirectory = Path.Combine(runRoot, ".cache"), InitAdapter = initAdapter, Logger = log,
        });
        string adapter = Path.Combine(run.OutputDirectory, "adapter");
        TrainingResult result;
        try
        {
            result = new Trainer(options.Training, tuned, batches, new LossProbe(validation, heldout), terms, log).Run(run.WorkDirectory, cancellationToken);
            tuned.Method.Save(tuned, adapter, baseModelDirectory);
            foreach (var term in terms) term.WriteArtifacts(adapter);
        }
        finally
        {
            foreach (var term in terms) term.Dispose();
        }
        if (options.Merge) MergedModel.Write(adapter, baseModelDirectory, Path.Combine(run.OutputDirectory, "merged"), "finetune.merge");
        string metrics = Path.Combine(run.OutputDirectory, MetricsLog.FileName);
        File.Copy(Path.Combine(run.WorkDirectory, MetricsLog.FileName), metrics);
        LossCurve.Draw(metrics, Path.Combine(run.OutputDirectory, LossCurve.FileName), $"finetune: {options.Method}");

        var summary = new Dictionary<string, object?>
        {
            ["method"] = options.Method,
            ["regularizers"] = options.Regularizers.ToArray(),
            ["steps"] = result.Steps,
            ["tokens"] = result.Tokens,
            ["stopReason"] = result.StopReason,
            ["resumedFromStep"] = result.ResumedFromStep,
            ["bestValidationTaskLoss"] = Math.Round(result.BestValidationLoss, 5),
            ["bestStep"] = result.BestStep,
            ["validationTaskLossBefore"] = Math.Round(result.ValidationLossBefore, 5),
            ["validationTaskLossAfter"] = Math.Round(result.ValidationLossAfter, 5),
            ["heldoutLossBefore"] = Math.Round(result.HeldoutLossBefore, 5),
            ["heldoutLossAfter"] = Math.Round(result.HeldoutLossAfter, 5),
            ["trainableParameters"] = tuned.TrainableParameters,
            ["totalParameters"] = tuned.TotalParameters,
            ["peakRssBytes"] = Process.GetCurrentProcess().PeakWorkingSet64,
            ["trainSeconds"] = Math.Round(result.WallSeconds, 1),
            ["wallSeconds"] = Math.Round(clock.Elapsed.TotalSeconds, 1),
        };
        foreach (var (key, value) in tuned.Method.Facts(tuned)) summary[key] = value;
        AtomicFile.WriteAllText(Path.Combine(run.OutputDirectory, "summary.json"),
            JsonSerializer.Serialize(summary, new JsonSerializerOptions { WriteIndented = true }) + "\n");
        log.LogInformation("finetune: {Steps} steps ({Stop}); validation task loss {VBefore:F4} → {VAfter:F4}, held-out loss {HBefore:F4} → {HAfter:F4}",
            result.Steps, result.StopReason, result.ValidationLossBefore, result.ValidationLossAfter, result.HeldoutLossBefore, result.HeldoutLossAfter);
        return StageOutcome.Done(summary);
    }
}
