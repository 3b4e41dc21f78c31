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
        return PipelineConfig.Load(file, StageRegistry.Sections, PipelineConfig.ParseOverrides(Cli.Options("set")).Concat(Shortcuts()));
    }

    /// <summary>Verb-specific options that stand for a config override (<c>evaluate --adapter DIR</c>).</summary>
    private IEnumerable<ConfigSetting> Shortcuts()
    {
        if (Cli.Verb == "evaluate" && Cli.Option("adapter") is { } adapter)
            yield return new("evaluate:adapter", Path.GetFullPath(adapter), "--adapter " + adapter); // relative to where the command runs
    }

    public RunOptions Run => run ??= Config.Section<RunOptions>("run");

    /// <summary>The run root this invocation writes to, which it must lock before the host starts (null: it only reads).</summary>
    public string? RunRootToLock { get; private set; }

    /// <summary>Whether a writer waits for another writer of the same run root (<c>--wait</c>) instead of stopping.</summary>
    public bool WaitForRunRoot { get; private set; }

    /// <summary>
    /// Registers the run store, rooted where the config says, and a JSON-lines log file for this run. A verb that
    /// <paramref name="writes"/> (stages, clean, pretrain) holds the run root's lock while it runs (<see cref="RunRootLock"/>).
    /// </summary>
    public void AddRunStore(bool writes)
    {
        if (writes)
        {
            WaitForRunRoot = Cli.Flag("wait");
            RunRootToLock = Config.ResolvePath(Run.Root);
        }
        string root = Config.ResolvePath(Run.Root);
        if (File.Exists(root))
            throw new ConfigException($"run.root = '{Run.Root}' is a file ({root}); it must name a folder (or a path that does not exist yet) for the stage outputs");
        Services.AddSingleton(sp => new RunStore(root, ToolVersion.Current, sp.GetRequiredService<ILoggerFactory>().CreateLogger("forgetless")));
        // The process id keeps two runs that start in the same second (a reader beside a writer) from sharing a log file.
        string log = Path.Combine(root, "logs", $"{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Cli.Verb}-{Environment.ProcessId}.jsonl");
        Services.AddSingleton<ILoggerProvider>(_ => new Logging.JsonLinesLoggerProvider(log));
        ConfigureTorchThreads();
    }

    /// <summary>libtorch's thread pools for this invocation (<c>run.threads</c>, else the cores this process may use).</summary>
    public void ConfigureTorchThreads() => TorchThreads.Apply(Run.Threads);

    /// <summary>The stages of this configuration in pipeline order (stages turned off are absent).</summary>
    public IReadOnlyList<IStage> Stages() => StageRegistry.Build(new StageContext(Config));

    /// <summary>Runs <paramref name="command"/> as the one hosted service of this invocation.</summary>
    public void AddCommand(Func<IServiceProvider, CancellationToken, Task<int>> command) =>
        Services.AddSingleton<IHostedService>(sp => ActivatorUtilities.CreateInstance<CommandService>(sp, Cli.Verb, command, sp));
}
