using Forgetless.Runs;
using Forgetless.Stages.Cli;
using Forgetless.Stages.Diagnostics;
using Forgetless.Stages.Hosting;
using Forgetless.Stages.Verbs;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Forgetless.Stages;

/// <summary>
/// The forgetless executable: parses the verb, builds a Generic Host whose hosted services do
/// the verb's work, runs it until they stop it, and returns their exit code.
/// </summary>
public static class ForgetlessApp
{
    public static async Task<int> RunAsync(string[] args)
    {
        CommandLine cli;
        try
        {
            cli = CommandLine.Parse(args);
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine("forgetless: " + e.Message);
            return ExitCodes.Usage;
        }
        // --diagnostics FILE: errors and warnings as JSON lines for MSBuild and CI (stages/Diagnostics).
        var diagnostics = cli.Option("diagnostics") is { } path ? new DiagnosticsFile(path) : null;
        DiagnosticsFile.Current = diagnostics;
        int code = await RunVerbAsync(cli);
        diagnostics?.Finish(code);
        return code;
    }

    private static async Task<int> RunVerbAsync(CommandLine cli)
    {
        if (cli.Verb == "help" || cli.Flag("help"))
        {
            Console.Out.WriteLine(VerbCatalog.Help());
            return ExitCodes.Ok;
        }
        var verb = VerbCatalog.All.FirstOrDefault(v => v.Name == cli.Verb);
        if (verb is null)
        {
            string? guess = Configuration.NearestName.Find(cli.Verb, VerbCatalog.All.Select(v => v.Name));
            return UsageError(new UsageException($"unknown verb '{cli.Verb}'" + (guess is not null ? $" — did you mean '{guess}'?" : "") +
                                                 " (forgetless help lists them)"));
        }

        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            DisableDefaults = true,
            ApplicationName = "forgetless",
            ContentRootPath = Directory.GetCurrentDirectory(),
        });
        ConfigureLogging(builder.Logging, cli.Flag("verbose"));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromMinutes(2)); // time to checkpoint on Ctrl+C
        builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
        builder.Services.AddSingleton<ExitCode>();
        try
        {
            verb.Register(new VerbContext(cli, builder.Services));
            cli.RejectUnused();
        }
        catch (Exception e) when (e is UsageException or UserInputException)
        {
            return UsageError(e);
        }

        using var host = builder.Build();
        var exitCode = host.Services.GetRequiredService<ExitCode>();
        await host.RunAsync();
        return exitCode.Value;
    }

    /// <summary>A mistake found before any work started: the command line, or the pipeline file (exit 2).</summary>
    private static int UsageError(Exception e)
    {
        Console.Error.WriteLine("forgetless: " + e.Message);
        DiagnosticsFile.Current?.Report(e);
        return ExitCodes.Usage;
    }

    private static void ConfigureLogging(ILoggingBuilder logging, bool verbose)
    {
        logging.ClearProviders();
        logging.SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Information);
        logging.AddFilter("Microsoft", LogLevel.Warning);
        // Logs go to stderr so that stdout carries only a verb's own output (status tables, generations).
        logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss ";
            o.ColorBehavior = Console.IsErrorRedirected || Environment.GetEnvironmentVariable("NO_COLOR") is not null
                ? LoggerColorBehavior.Disabled
                : LoggerColorBehavior.Default;
        });
        logging.Services.Configure<ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        if (DiagnosticsFile.Current is { } diagnostics) logging.AddProvider(new DiagnosticsLoggerProvider(diagnostics));
    }
}
