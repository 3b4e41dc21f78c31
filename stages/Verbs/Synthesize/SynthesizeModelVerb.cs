using Forgetless.Model;
using Forgetless.Model.Safetensors;
using Forgetless.Runs;
using Forgetless.Stages.Cli;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.Verbs.Synthesize;

/// <summary>
/// `forgetless synthesize-model --shape NAME --output DIR [--tokenizer DIR]`: a model folder with a real checkpoint's
/// exact config.json and storage (bf16, sharded like the real one), random weights (HF's N(0, initializer_range)) and
/// the given tokenizer files (the embedded model's by default; its ids fit any larger vocabulary). For measuring the
/// pipeline at a real model's size (docs/benchmarks/real-size.md); what it learns there means nothing.
/// </summary>
public static class SynthesizeModelVerb
{
    public static Verb Definition { get; } = new(
        "synthesize-model",
        "forgetless synthesize-model --shape " + string.Join("|", RealShapes.All.Select(s => s.Name)) + " --output DIR [--tokenizer DIR] [--seed N]",
        "a randomly initialised checkpoint with a real model's exact config and storage, for real-size benchmarks",
        Register);

    private static void Register(VerbContext context)
    {
        var cli = context.Cli;
        string name = cli.RequiredOption("shape");
        var shape = RealShapes.Find(name)
            ?? throw new UsageException($"synthesize-model: unknown --shape '{name}'; shapes: {string.Join(", ", RealShapes.All.Select(s => s.Name))}");
        string output = Path.GetFullPath(cli.RequiredOption("output"));
        string? tokenizer = cli.Option("tokenizer");
        long seed = ScoreVerb.LongOption(cli, "seed", 1);
        context.AddCommand((sp, _) =>
        {
            var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("forgetless");
            var config = ModelConfig.FromJson(shape.Config.ToJsonString(), $"{shape.Name} config.json");
            using var model = ModelFactory.Create(config with { Raw = shape.Config }, seed);
            logger.LogInformation("synthesize-model: {Shape}, {Parameters:N0} parameters", shape.Summary, model.parameters().Sum(p => p.numel()));
            ModelFolder.Save(model, output, new ModelSaveOptions
            {
                DType = SafetensorsDType.BF16,
                MaxShardBytes = shape.MaxShardBytes,
                TokenizerDirectory = Path.GetFullPath(tokenizer ?? context.Config.ResolvePath(context.Run.BaseModel)),
            });
            logger.LogInformation("synthesize-model: wrote {Output}", output);
            return Task.FromResult(ExitCodes.Ok);
        });
    }
}
