using System.Runtime.InteropServices;
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

        bool verbose = cli.Flag("verbose");
        try
        {
            var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
            {
                DisableDefaults = true,
                ApplicationName = "forgetless",
                ContentRootPath = Directory.GetCurrentDirectory(),
            });
            ConfigureLogging(builder.Logging, verbose);
            builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromMinutes(2)); // time to checkpoint on Ctrl+C
            builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
            builder.Services.AddSingleton<ExitCode>();
            var context = new VerbContext(cli, builder.Services);
            verb.Register(context);
            cli.RejectUnused();

            using var runRootLock = context.RunRootToLock is { } root ? await LockRunRoot(root, cli, context.WaitForRunRoot) : null;
            using var host = builder.Build();
            var exitCode = host.Services.GetRequiredService<ExitCode>();
            await host.RunAsync();
            return exitCode.Value;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("forgetless: cancelled while waiting for the run root");
            return ExitCodes.Cancelled;
        }
        catch (Exception e)
        {
            // Mistakes found while the verb sets up (bad config, bad options) and anything the host itself throws:
            // one line, the exit code of its kind, the stack trace only with --verbose.
            bool expected = e is UsageException or UserInputException or IOException or UnauthorizedAccessException;
            DiagnosticsFile.Current?.Report(e); // --diagnostics: the same failure with its code and location
            Console.Error.WriteLine("forgetless: " + (expected ? "" : "unexpected error: ") + e.Message
                                    + (expected || verbose ? "" : " (run again with --verbose for the stack trace)"));
            if (verbose) Console.Error.WriteLine(e);
            return Failures.ExitCodeOf(e);
        }
    }

    /// <summary>
    /// Takes the run root's lock before the host starts (so that the plan of what is stale is made by the one writer);
    /// Ctrl+C or SIGTERM end a wait. Held until the process ends.
    /// </summary>
    private static async Task<RunRootLock> LockRunRoot(string root, CommandLine cli, bool wait)
    {
        using var cancel = new CancellationTokenSource();
        void Stop(PosixSignalContext signal)
        {
            signal.Cancel = true;
            cancel.Cancel();
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        return await RunRootLock.AcquireAsync(root, $"forgetless {cli.Verb}", wait, message => Console.Error.WriteLine("forgetless: " + message), cancel.Token);
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
