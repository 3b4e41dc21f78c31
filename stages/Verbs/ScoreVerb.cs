using System.Globalization;
using Forgetless.Configuration;
using Forgetless.FineTuning;
using Forgetless.Model;
using Forgetless.Model.Devices;
using Forgetless.Model.Inference;
using Forgetless.Peft;
using Forgetless.Runs;
using Forgetless.Stages.Cli;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.Verbs;

/// <summary>
/// `forgetless score --input FILE.jsonl --output FILE.jsonl [--model DIR] [--adapter DIR]`: log-likelihoods of
/// each line's text (or continuation), with any adapter folder the finetune stage wrote applied.
/// </summary>
public static class ScoreVerb
{
    public static Verb Definition { get; } = new(
        "score",
        "forgetless score --input FILE.jsonl --output FILE.jsonl [--model DIR] [--adapter DIR [--task NAME]] [--batch N]",
        "log-likelihood of each JSON line's text or continuation under the model (+ adapter)",
        Register);

    private static void Register(VerbContext context)
    {
        string input = context.Cli.RequiredOption("input");
        string output = context.Cli.RequiredOption("output");
        if (SameFile(input, output))
            throw new UsageException($"score: --output {output} is the --input file; the scores would replace the text they score — name another file");
        string model = ModelOption(context);
        string? adapter = context.Cli.Option("adapter");
        string? task = context.Cli.Option("task");
        if (task == "auto") throw new UsageException("score: --task auto routes one input; name the adapter with --task NAME (generate --task auto routes its prompt)");
        int batch = IntOption(context.Cli, "batch", 8);
        context.ConfigureTorchThreads();
        context.AddCommand((sp, ct) => NativeHeap.RunInMainArena(() =>
        {
            var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("forgetless");
            var loaded = LoadWithAdapter(model, adapter, logger, DeviceSelector.Place(context.Run, logger), task);
            var summary = JsonlScoring.Run(new Scorer(loaded.Model, loaded.Tokenizer!, batch), input, output, ct);
            logger.LogInformation("score: {Rows} rows, {Tokens} tokens, mean log-prob {Mean:F4} per token, {Seconds:F1} s → {Output}",
                summary.Rows, summary.ScoredTokens, summary.ScoredTokens > 0 ? summary.SumLogProb / summary.ScoredTokens : 0,
                summary.Elapsed.TotalSeconds, output);
            return ExitCodes.Ok;
        }));
    }

    /// <summary>--model, else run.baseModel from the pipeline file (--config and --set are accepted either way).</summary>
    internal static string ModelOption(VerbContext context)
    {
        _ = context.Cli.Option("config");
        _ = context.Cli.Options("set");
        return context.Cli.Option("model") is { } m ? Path.GetFullPath(m) : context.Config.ResolvePath(context.Run.BaseModel);
    }

    /// <summary>Whether two paths name one file (also through a symbolic link).</summary>
    private static bool SameFile(string a, string b)
    {
        static string Resolve(string path)
        {
            var full = Path.GetFullPath(path);
            return File.Exists(full) && new FileInfo(full).ResolveLinkTarget(returnFinalTarget: true) is { } target ? target.FullName : full;
        }
        return Resolve(a) == Resolve(b);
    }

    internal static int IntOption(CommandLine cli, string name, int fallback) =>
        cli.Option(name) is not { } text ? fallback
        : int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v > 0 ? v
        : throw new UsageException($"{cli.Verb}: --{name} '{text}' is not a positive whole number");

    /// <summary>A number option within [<paramref name="min"/>, <paramref name="max"/>] (NaN and infinities are never valid).</summary>
    internal static double DoubleOption(CommandLine cli, string name, double fallback, double min, double max, string allowed) =>
        cli.Option(name) is not { } text ? fallback
        : double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v) && v >= min && v <= max ? v
        : throw new UsageException($"{cli.Verb}: --{name} '{text}' is not valid; expected {allowed}");

    internal static long LongOption(CommandLine cli, string name, long fallback) =>
        cli.Option(name) is not { } text ? fallback
        : long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v
        : throw new UsageException($"{cli.Verb}: --{name} '{text}' is not a whole number");

    /// <summary>
    /// The model folder with its tokenizer, on the run's device in its compute type, and the adapter (any method) applied
    /// through <see cref="AdapterFolder.Apply"/>. From a multi-adapter folder (<see cref="AdapterSet"/>) the adapter named
    /// by <paramref name="task"/>, or with <c>auto</c> the one the set's router picks for <paramref name="input"/>.
    /// </summary>
    internal static LoadedModel LoadWithAdapter(string model, string? adapter, ILogger logger, Placement placement, string? task = null, string? input = null)
    {
        var loaded = ModelFolder.Load(model, placement: placement);
        if (loaded.Tokenizer is null) throw new UserInputException($"{model}: the model folder has no tokenizer");
        if (adapter is not null)
        {
            string folder = Path.GetFullPath(adapter);
            if (task is not null)
            {
                if (!AdapterSet.IsSet(folder)) throw new UsageException($"{adapter} is a single adapter; --task chooses among the adapters of a multi-adapter folder");
                folder = AdapterSet.Choose(folder, task, loaded.Model, loaded.Tokenizer, input);
                logger.LogInformation("{Adapter}: task {Task}", adapter, Path.GetFileName(folder));
            }
            var type = AdapterFolder.Apply(loaded.Model, folder);
            logger.LogInformation("{Adapter}: applied a {Type} adapter", folder, type);
            placement.Place(loaded.Model, loaded.Model.PrefixKeyValues as TorchSharp.torch.nn.Module);
        }
        else if (task is not null)
        {
            throw new UsageException("--task needs --adapter with a multi-adapter folder");
        }
        loaded.Model.eval();
        return loaded;
    }
}
