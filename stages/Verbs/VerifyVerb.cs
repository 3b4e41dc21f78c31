using Forgetless.Packaging;
using Forgetless.Runs;
using Forgetless.Stages.Cli;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.Verbs;

/// <summary>
/// `forgetless verify PACKAGE [--base DIR] [--rerun-gates]`: checks a package folder or archive — every
/// checksum, the recorded gate verdicts, that the adapter fits the base model, and optionally the gates again.
/// Exit 0 when it holds, 1 when a problem was found (each printed with the file or tensor it concerns).
/// </summary>
public static class VerifyVerb
{
    public static Verb Definition { get; } = new(
        "verify",
        "forgetless verify PACKAGE [--base DIR] [--rerun-gates] [--config FILE]",
        "check a package (folder, .tar.gz, .zip or .nupkg): checksums, gate verdicts, adapter shapes against a base, optionally re-run the gates",
        Register);

    private static void Register(VerbContext context)
    {
        var cli = context.Cli;
        if (cli.Positional.Count != 1) throw new UsageException("verify: give one PACKAGE (a package folder or archive)");
        string package = Path.GetFullPath(cli.Positional[0]);
        string? baseModel = cli.Option("base") is { } b ? Path.GetFullPath(b) : null;
        bool rerun = cli.Flag("rerun-gates");
        string? configFile = cli.Option("config");
        _ = cli.Options("set"); // accepted like every verb; only the config file's folder is used (suite paths)
        string suiteDirectory = Path.GetDirectoryName(Path.GetFullPath(configFile ?? Configuration.PipelineConfig.DefaultFileName))!;
        context.AddCommand((sp, ct) =>
        {
            var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("forgetless");
            var report = PackageVerifier.Verify(package, baseModel, rerun, suiteDirectory, logger, ct);
            foreach (var note in report.Notes) Console.Out.WriteLine("  ok   " + note);
            foreach (var problem in report.Problems) Console.Out.WriteLine("  FAIL " + problem);
            Console.Out.WriteLine(report.Ok ? $"verify: {cli.Positional[0]} is intact" : $"verify: {cli.Positional[0]}: {report.Problems.Count} problem(s)");
            return Task.FromResult(report.Ok ? ExitCodes.Ok : ExitCodes.Error);
        });
    }
}
