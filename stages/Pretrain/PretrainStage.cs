using Forgetless.Configuration;
using Forgetless.FineTuning;
using Forgetless.Model;
using Forgetless.Pretraining;
using Forgetless.Runs;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.Pretrain;

/// <summary>
/// Builds the embedded base model. Not one of the pipeline's stages (it makes what they start
/// from), but run through the same run store: skipped when its inputs did not change, resumable,
/// and published only when complete.
/// </summary>
public sealed class PretrainStage(PipelineConfig config, PretrainOptions options, RunOptions run) : IStage
{
    public string Name => "pretrain";

    public void DeclareInputs(StageInputs inputs) => inputs
        .File("corpus", config.ResolvePath(options.Corpus))
        .File("heldout", config.ResolvePath(options.Heldout))
        .File("suite:heldout", config.ResolvePath(options.HeldoutSuite))
        .File("suite:facts", config.ResolvePath(options.FactsSuite))
        .File("suite:cloze", config.ResolvePath(options.ClozeSuite))
        .Directory("tokenizer", config.ResolvePath(options.Tokenizer))
        .Value("config:pretrain", PipelineConfig.Canonical(options))
        .Value("seed", run.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture));

    public Task<StageOutcome> RunAsync(StageRun stageRun, CancellationToken cancellationToken) =>
        NativeHeap.RunInMainArena(() => Run(stageRun, cancellationToken));

    private StageOutcome Run(StageRun stageRun, CancellationToken cancellationToken)
    {
        // Float sums depend on how work is split between threads: the curve is reproducible per thread count,
        // which is therefore part of the options (and so of the fingerprint).
        TorchSharp.torch.set_num_threads(options.Threads);
        var trainer = new Pretrainer(options, run.Seed, config.ResolvePath, stageRun.Logger) { Device = DeviceSelector.Select(run.Device, stageRun.Logger) };
        var result = trainer.Run(stageRun.WorkDirectory, cancellationToken);
        ModelFolder.Save(result.Model, stageRun.OutputDirectory,
            new ModelSaveOptions { TokenizerDirectory = config.ResolvePath(options.Tokenizer) });
        File.Copy(Path.Combine(stageRun.WorkDirectory, Pretrainer.MetricsFile), Path.Combine(stageRun.OutputDirectory, "training_log.jsonl"));

        stageRun.Logger.LogInformation("pretrain: measuring what the model knows (held-out text, facts, cloze)");
        var report = BaseModelReport.Measure(result.Model, result.Tokenizer, result.TrainTokens,
            config.ResolvePath(options.HeldoutSuite), config.ResolvePath(options.FactsSuite), config.ResolvePath(options.ClozeSuite),
            run.Seed, cancellationToken);
        File.WriteAllText(Path.Combine(stageRun.OutputDirectory, "eval.json"), report.ToJson());
        File.WriteAllText(Path.Combine(stageRun.OutputDirectory, "README.md"), BaseModelCard.Write(options, result, report, run.Seed));
        return StageOutcome.Done(new Dictionary<string, object?>
        {
            ["steps"] = result.Steps,
            ["tokensSeen"] = result.TokensSeen,
            ["parameters"] = result.Parameters,
            ["trainLoss"] = Math.Round(result.FinalTrainLoss, 4),
            ["heldoutLoss"] = Math.Round(result.FinalHeldoutLoss, 4),
            ["trainSeconds"] = Math.Round(result.WallSeconds, 1),
            ["report"] = report.Numbers,
        });
    }
}
