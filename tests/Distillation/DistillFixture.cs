using System.Text.Json;
using System.Text.Json.Nodes;
using Forgetless.Configuration;
using Forgetless.Runs;
using Forgetless.Stages;
using Forgetless.Tests.FineTuning;
using Microsoft.Extensions.Logging.Abstractions;

namespace Forgetless.Tests.DistillationStage;

/// <summary>
/// FineTune's tiny pipeline (2-layer Llama, spelling task, replay text) with a <c>distill</c> section sized to run in
/// well under a second, and a runner that stops after the distill stage.
/// </summary>
public sealed class DistillFixture : IDisposable
{
    public FineTuneFixture Pipeline { get; } = new();
    public string Root => Pipeline.Root;

    public DistillFixture(JsonObject? distill = null) => WriteDistill(distill ?? new JsonObject());

    /// <summary>Adds (or replaces) the distill section; <paramref name="overrides"/> entries override the small defaults.</summary>
    public void WriteDistill(JsonObject overrides)
    {
        var config = JsonNode.Parse(File.ReadAllText(Pipeline.ConfigPath))!.AsObject();
        var section = new JsonObject
        {
            ["enabled"] = true,
            ["alpha"] = 0.7,
            ["temperature"] = 2.0,
            ["topK"] = 16,
            ["teacherRows"] = 0,
            ["taskRows"] = 0,
            ["teacherBatchRows"] = 8,
            ["steps"] = 16,
            ["tokensPerBatch"] = 128,
            ["learningRate"] = 0.01,
            ["warmupSteps"] = 2,
            ["logEvery"] = 2,
            ["evalEvery"] = 8,
            ["checkpointEvery"] = 3,
            ["validationSequences"] = 8,
            ["heldout"] = "heldout.txt",
            ["heldoutWindows"] = 4,
            ["heldoutWindowLength"] = 32,
        };
        foreach (var (key, value) in overrides) section[key] = value?.DeepClone();
        config["distill"] = section;
        File.WriteAllText(Pipeline.ConfigPath, config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    public PipelineConfig LoadConfig(params string[] overrides) => Pipeline.LoadConfig(overrides);

    /// <summary>The configured stages (all of them, as the registry builds them).</summary>
    public IReadOnlyList<IStage> Stages(params string[] overrides)
    {
        var config = LoadConfig(overrides);
        return StageRegistry.Build(new StageContext(config));
    }

    /// <summary>prepare, finetune and distill through the run store; returns distill's summary.json.</summary>
    public async Task<JsonObject> RunAsync(CancellationToken cancellationToken = default, string runRoot = "runs", bool forceDistill = false, params string[] overrides)
    {
        var config = LoadConfig(["run.root=" + runRoot, .. overrides]);
        var run = config.Section<RunOptions>("run");
        var stages = StageRegistry.Build(new StageContext(config));
        var store = new RunStore(config.ResolvePath(run.Root), "test", NullLogger.Instance);
        foreach (var stage in stages.TakeWhile(s => s.Name != "evaluate"))
            await store.RunAsync(stage, force: forceDistill && stage.Name == "distill", cancellationToken);
        return FineTuneFixture.Summary(Path.Combine(config.ResolvePath(run.Root), "distill"));
    }

    public void Dispose() => Pipeline.Dispose();
}
