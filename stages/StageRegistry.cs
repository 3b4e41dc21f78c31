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
    ];

    private static IStage CreateFineTune(StageFactoryContext c)
    {
        var options = c.Config.Section<FineTuning.FineTuneOptions>("finetune");
        return new FineTune.FineTuneStage(options, c.Config.ResolvePath(c.Run.BaseModel), c.Config.ResolvePath(options.Heldout), c.Run.Seed,
            c.Config.ResolvePath(c.Run.Root), options.InitAdapter is { Length: > 0 } init ? c.Config.ResolvePath(init) : null, c.Run.Device);
    }

    private static IStage CreatePrepare(StageFactoryContext c)
    {
        string model = c.Config.ResolvePath(c.Run.BaseModel);
        return new Prepare.PrepareStage(c.Config.Section<Data.PrepareOptions>("prepare"), model, Model.Tokenizers.TokenizerLoader.Load,
            c.Config.BaseDirectory, () => new Data.ModelReplayGenerator(model), model);
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
