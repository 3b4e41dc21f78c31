using Forgetless.Configuration;
using Forgetless.Runs;

namespace Forgetless.Stages;

/// <summary>
/// The pipeline's stages in order, each with its config section. A new stage is one line here; the stage verbs,
/// <c>status</c> and <c>clean</c> follow from this list.
/// </summary>
public static class StageRegistry
{
    public sealed record Entry(string Name, Type OptionsType, string Summary, Func<StageContext, IStage?> Create);

    /// <summary>Pipeline order. A factory may return null when the stage is turned off in config.</summary>
    public static IReadOnlyList<Entry> All { get; } =
    [
        new("prepare", typeof(Data.PrepareOptions), "mix task and replay data into tokenized, packed Parquet", CreatePrepare),
        new("finetune", typeof(FineTuning.FineTuneOptions), "fine-tune the base model with a PEFT method and anti-forgetting terms", CreateFineTune),
        new("distill", typeof(global::Forgetless.Distill.DistillOptions), "consolidate the finetune adapter toward the teacher on replay rows (cached top-k teacher pass; off unless distill.enabled)", CreateDistill),
        new("evaluate", typeof(Evaluation.EvaluateOptions), "measure forgetting and gain against the base model; gate the release (exit 4 on a failed gate)", CreateEvaluate),
        new("package", typeof(Packaging.PackageOptions), "package the gated adapter: PEFT folder, provenance, checksums, deterministic archive (refuses when a gate failed)", CreatePackage),
    ];

    private static IStage CreatePrepare(StageContext c) => new Prepare.PrepareStage(c, c.Section<Data.PrepareOptions>("prepare"));

    private static IStage CreateFineTune(StageContext c) => new FineTune.FineTuneStage(c, c.Section<FineTuning.FineTuneOptions>("finetune"));

    private static IStage? CreateDistill(StageContext c)
    {
        var options = c.Section<global::Forgetless.Distill.DistillOptions>("distill");
        return options.Enabled ? new Distill.DistillStage(c, options, c.Section<FineTuning.FineTuneOptions>("finetune")) : null;
    }

    private static IStage CreateEvaluate(StageContext c)
    {
        var options = c.Section<Evaluation.EvaluateOptions>("evaluate");
        var (upstream, adapter) = Candidate(c, options, explicitAdapter: options.Adapter);
        return new Evaluate.EvaluateStage(c, options, upstream, adapter, ToolVersion.Current);
    }

    private static IStage CreatePackage(StageContext c)
    {
        var options = c.Section<Packaging.PackageOptions>("package");
        var evaluate = c.Section<Evaluation.EvaluateOptions>("evaluate");
        string baseModel = evaluate.BaseModel.Length > 0 ? c.Resolve(evaluate.BaseModel) : c.BaseModel;
        // The adapter evaluate judged: package.adapter, else evaluate's explicit adapter, else its candidate stage.
        var (upstream, adapter) = Candidate(c, evaluate, explicitAdapter: options.Adapter.Length > 0 ? options.Adapter : evaluate.Adapter);
        return new Package.PackageStage(c, options, baseModel, upstream, adapter, usesPreparedData: upstream is not null && All.Any(e => e.Name == "prepare"),
            ConfigJson(c.Config), ToolVersion.Current);
    }

    /// <summary>Every section as bound (defaults filled in), canonical JSON, as a package's provenance records the configuration.</summary>
    public static System.Text.Json.Nodes.JsonObject ConfigJson(Configuration.PipelineConfig config) =>
        Packaging.Provenance.ConfigSections(Sections.Select(s => KeyValuePair.Create(s.Key, Configuration.PipelineConfig.Canonical(Bind(config, s.Key, s.Value)))));

    /// <summary>
    /// The candidate adapter of a release: an explicit folder, else the stage <c>evaluate.candidate</c> names, else
    /// distill when it is on, else finetune. Returns the upstream stage or the folder (one of them null).
    /// </summary>
    private static (string? Upstream, string? Folder) Candidate(StageContext c, Evaluation.EvaluateOptions evaluate, string explicitAdapter)
    {
        if (explicitAdapter.Length > 0) return (null, c.Resolve(explicitAdapter));
        if (evaluate.Candidate.Length > 0) return (evaluate.Candidate, null);
        return (All.FirstOrDefault(e => e.Name == "distill") is { } distill && distill.Create(c) is not null ? "distill" : "finetune", null);
    }
    /// <summary>Binds a section whose options type is known only at run time.</summary>
    private static object Bind(Configuration.PipelineConfig config, string section, Type type)
    {
        try
        {
            return typeof(Configuration.PipelineConfig).GetMethod(nameof(Configuration.PipelineConfig.Section))!.MakeGenericMethod(type).Invoke(config, [section])!;
        }
        catch (System.Reflection.TargetInvocationException e) when (e.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerException);
            throw;
        }
    }

    /// <summary>Every config section: <c>run</c>, <c>pretrain</c> (the embedded base model) and one per stage.</summary>
    public static IReadOnlyDictionary<string, Type> Sections { get; } =
        new Dictionary<string, Type>
            {
                ["run"] = typeof(RunOptions),
                ["pretrain"] = typeof(Pretraining.PretrainOptions),
                ["continual"] = typeof(Forgetless.Continual.ContinualOptions),
            }
            .Concat(All.Select(e => KeyValuePair.Create(e.Name, e.OptionsType)))
            .ToDictionary(StringComparer.Ordinal);

    public static IReadOnlyList<IStage> Build(StageContext context) =>
        All.Select(e => e.Create(context)).OfType<IStage>().ToList();
}
