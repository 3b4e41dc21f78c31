using Forgetless.Configuration;
using Forgetless.Runs;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages;

/// <summary>
/// The pipeline's stages in order, each with its config section. A stage issue adds one line
/// here; everything else (verbs, status, Cake targets) follows from this list.
/// </summary>
public static class StageRegistry
{
    public sealed record Entry(string Name, Type OptionsType, string Summary, Func<StageFactoryContext, IStage?> Create);

    /// <summary>Pipeline order. A factory may return null when the stage is turned off in config.</summary>
    public static IReadOnlyList<Entry> All { get; } =
    [
        new("prepare", typeof(Data.PrepareOptions), "mix task and replay data into tokenized, packed Parquet", CreatePrepare),
        new("finetune", typeof(FineTuning.FineTuneOptions), "fine-tune the base model with a PEFT method and anti-forgetting regularizers", CreateFineTune),
        new("distill", typeof(global::Forgetless.Distill.DistillOptions), "consolidate the finetune adapter toward the teacher on replay rows (cached top-k teacher pass; off unless distill.enabled)", CreateDistill),
        new("evaluate", typeof(Evaluation.EvaluateOptions), "measure forgetting and gain against the base model; gate the release (exit 4 on a failed gate)", CreateEvaluate),
        new("package", typeof(Packaging.PackageOptions), "package the gated adapter: PEFT folder, provenance, checksums, deterministic archive (refuses when a gate failed)", CreatePackage),
    ];

    private static IStage CreateFineTune(StageFactoryContext c)
    {
        var options = c.Config.Section<FineTuning.FineTuneOptions>("finetune");
        return new FineTune.FineTuneStage(options, c.Config.ResolvePath(c.Run.BaseModel), c.Config.ResolvePath(options.Heldout), c.Run.Seed,
            c.Config.ResolvePath(c.Run.Root), options.InitAdapter is { Length: > 0 } init ? c.Config.ResolvePath(init) : null, c.Run.Device);
    }

    private static IStage? CreateDistill(StageFactoryContext c)
    {
        var options = c.Config.Section<global::Forgetless.Distill.DistillOptions>("distill");
        if (!options.Enabled) return null;
        string baseModel = c.Config.ResolvePath(c.Run.BaseModel);
        string? teacher = options.Teacher.Length > 0 ? c.Config.ResolvePath(options.Teacher) : null;
        return new Distill.DistillStage(options, c.Config.Section<FineTuning.FineTuneOptions>("finetune"), baseModel,
            teacher == baseModel ? null : teacher, c.Config.ResolvePath(options.Heldout), c.Run.Seed, c.Config.ResolvePath(c.Run.Root), c.Run.Device);
    }

    private static IStage CreatePrepare(StageFactoryContext c)
    {
        string model = c.Config.ResolvePath(c.Run.BaseModel);
        return new Prepare.PrepareStage(c.Config.Section<Data.PrepareOptions>("prepare"), model, Model.Tokenizers.TokenizerLoader.Load,
            c.Config.BaseDirectory, () => new Data.ModelReplayGenerator(model), model);
    }

    private static IStage CreateEvaluate(StageFactoryContext c)
    {
        var options = c.Config.Section<Evaluation.EvaluateOptions>("evaluate");
        string baseModel = c.Config.ResolvePath(options.BaseModel.Length > 0 ? options.BaseModel : c.Run.BaseModel);
        string? adapter = options.Adapter.Length > 0 ? c.Config.ResolvePath(options.Adapter) : null;
        // The candidate: an explicit adapter folder, else the named stage, else distill when it is on, else finetune.
        string? upstream = adapter is not null ? null
            : options.Candidate.Length > 0 ? options.Candidate
            : All.FirstOrDefault(e => e.Name == "distill") is { } distill && distill.Create(c) is not null ? "distill"
            : All.Any(e => e.Name == "finetune") ? "finetune" : null;
        return new Evaluate.EvaluateStage(options, baseModel, c.Config.BaseDirectory, c.Config.ResolvePath(c.Run.Root), c.Run.Seed,
            upstream, adapter, ToolVersion.Current);
    }

    private static IStage CreatePackage(StageFactoryContext c)
    {
        var options = c.Config.Section<Packaging.PackageOptions>("package");
        var evaluate = c.Config.Section<Evaluation.EvaluateOptions>("evaluate");
        string baseModel = c.Config.ResolvePath(evaluate.BaseModel.Length > 0 ? evaluate.BaseModel : c.Run.BaseModel);
        // The adapter evaluate judged: package.adapter, else evaluate's explicit adapter, else its candidate stage (as in CreateEvaluate).
        string? adapter = options.Adapter.Length > 0 ? c.Config.ResolvePath(options.Adapter)
            : evaluate.Adapter.Length > 0 ? c.Config.ResolvePath(evaluate.Adapter) : null;
        string? upstream = adapter is not null ? null
            : evaluate.Candidate.Length > 0 ? evaluate.Candidate
            : All.FirstOrDefault(e => e.Name == "distill") is { } distill && distill.Create(c) is not null ? "distill"
            : All.Any(e => e.Name == "finetune") ? "finetune" : null;
        var sections = Sections.Select(s => KeyValuePair.Create(s.Key, Configuration.PipelineConfig.Canonical(Bind(c.Config, s.Key, s.Value))));
        return new Package.PackageStage(options, baseModel, upstream, adapter, usesPreparedData: upstream is not null && All.Any(e => e.Name == "prepare"),
            Packaging.Provenance.ConfigSections(sections), c.Config.BaseDirectory, ToolVersion.Current);
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
            }
            .Concat(All.Select(e => KeyValuePair.Create(e.Name, e.OptionsType)))
            .ToDictionary(StringComparer.Ordinal);

    public static IReadOnlyList<IStage> Build(StageFactoryContext context) =>
        All.Select(e => e.Create(context)).OfType<IStage>().ToList();
}

/// <summary>What a stage factory can use: the loaded config and a logger factory.</summary>
public sealed record StageFactoryContext(PipelineConfig Config, RunOptions Run, ILoggerFactory LoggerFactory);
