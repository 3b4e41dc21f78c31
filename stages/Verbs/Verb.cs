using Forgetless.Configuration;
using Forgetless.Runs;
using Forgetless.Stages.Cli;
using Forgetless.Stages.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.Verbs;

/// <summary>A command of the forgetless executable: how it is called and which hosted services do the work.</summary>
public sealed record Verb(string Name, string Usage, string Summary, Action<VerbContext> Register);

/// <summary>What a verb's registration can use. The pipeline file is loaded on first use only.</summary>
public sealed class VerbContext
{
    private PipelineConfig? config;
    private RunOptions? run;

    public VerbContext(CommandLine cli, IServiceCollection services)
    {
        Cli = cli;
        Services = services;
    }

    public CommandLine Cli { get; }
    public IServiceCollection Services { get; }

    /// <summary>The pipeline file named by --config (default forgetless.json), with --set overrides.</summary>
    public PipelineConfig Config => config ??= LoadConfig(Cli.Option("config") ?? PipelineConfig.DefaultFileName);

    private PipelineConfig LoadConfig(string file)
    {
        Diagnostics.DiagnosticsFile.Current?.UsePipelineFile(file);
        return PipelineConfig.Load(file, StageRegistry.Sections, LastWins(PipelineConfig.ParseOverrides(Cli.Options("set")).Concat(Shortcuts())));
    }

    /// <summary>
    /// A key set twice (<c>--set a.b=1 --set a.b=2</c>, as an MSBuild project and its command line can) takes the
    /// later value, as a later source does; the configuration's in-memory source refuses duplicate keys.
    /// </summary>
    private static IEnumerable<KeyValuePair<string, string?>> LastWins(IEnumerable<KeyValuePair<string, string?>> overrides)
    {
        var last = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        var order = new List<string>();
        foreach (var (key, value) in overrides)
        {
            if (!last.ContainsKey(key)) order.Add(key);
            last[key] = value;
        }
        return order.Select(k => KeyValuePair.Create(k, last[k]));
    }

    /// <summary>Verb-specific options that stand for a config override (<c>evaluate --adapter DIR</c>).</summary>
    private IEnumerable<KeyValuePair<string, string?>> Shortcuts()
    {
        if (Cli.Verb == "evaluate" && Cli.Option("adapter") is { } adapter)
            yield return new("evaluate:adapter", Path.GetFullPath(adapter)); // relative to where the command runs
    }

    public RunOptions Run => run ??= Config.Section<RunOptions>("run");

    /// <summary>Registers the run store, rooted where the config says, and a JSON-lines log file for this run.</summary>
    public void AddRunStore()
    {
        string root = Config.ResolvePath(Run.Root);
        Services.AddSingleton(sp => new RunStore(root, ToolVersion.Current, sp.GetRequiredService<ILoggerFactory>().CreateLogger("forgetless")));
        string log = Path.Combine(root, "logs", $"{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Cli.Verb}.jsonl");
        Services.AddSingleton<ILoggerProvider>(_ => new Logging.JsonLinesLoggerProvider(log));
        if (Run.Threads > 0) TorchSharp.torch.set_num_threads(Run.Threads);
    }

    /// <summary>The stages of this configuration in pipeline order (stages turned off are absent).</summary>
    public IReadOnlyList<IStage> Stages() => StageRegistry.Build(new StageContext(Config));

    /// <summary>Runs <paramref name="command"/> as the one hosted service of this invocation.</summary>
    public void AddCommand(Func<IServiceProvider, CancellationToken, Task<int>> command) =>
        Services.AddSingleton<IHostedService>(sp => ActivatorUtilities.CreateInstance<CommandService>(sp, Cli.Verb, command, sp));
}
