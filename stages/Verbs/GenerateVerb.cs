using Forgetless.Configuration;
using Forgetless.FineTuning;
using Forgetless.Model.Inference;
using Forgetless.Runs;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.Verbs;

/// <summary>
/// `forgetless generate --prompt TEXT [--model DIR] [--adapter DIR] [--max-new-tokens N] [--temperature T] [--top-p P] [--seed S]`:
/// continues a prompt (greedy at temperature 0) and prints the continuation on stdout.
/// </summary>
public static class GenerateVerb
{
    public static Verb Definition { get; } = new(
        "generate",
        "forgetless generate --prompt TEXT [--model DIR] [--adapter DIR [--task NAME|auto]] [--max-new-tokens N] [--temperature T] [--top-p P] [--seed S]",
        "continue a prompt with the model (+ adapter); greedy unless --temperature > 0",
        Register);

    private static void Register(VerbContext context)
    {
        var cli = context.Cli;
        string prompt = cli.RequiredOption("prompt");
        string model = ScoreVerb.ModelOption(context);
        string? adapter = cli.Option("adapter");
        string? task = cli.Option("task");
        var options = new GenerationOptions
        {
            MaxNewTokens = ScoreVerb.IntOption(cli, "max-new-tokens", 64),
            Temperature = ScoreVerb.DoubleOption(cli, "temperature", 0, 0, double.MaxValue, "a finite number, 0 (greedy) or more"),
            TopP = ScoreVerb.DoubleOption(cli, "top-p", 1.0, double.Epsilon, 1, "a number in (0, 1]"),
            Seed = ScoreVerb.LongOption(cli, "seed", 0),
        };
        context.ConfigureTorchThreads();
        context.AddCommand((sp, ct) => NativeHeap.RunInMainArena(() =>
        {
            var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("forgetless");
            var loaded = ScoreVerb.LoadWithAdapter(model, adapter, logger, DeviceSelector.Place(context.Run, logger), task, prompt);
            var result = new TextGenerator(loaded.Model, loaded.Tokenizer!).Generate(prompt, options, ct);
            Console.Out.WriteLine(prompt + result.Text);
            logger.LogInformation("generate: {Tokens} new tokens, finished by {Reason}", result.TokenIds.Count, result.FinishReason);
            return ExitCodes.Ok;
        }));
    }
}
