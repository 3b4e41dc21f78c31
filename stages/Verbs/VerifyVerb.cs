using Forgetless.FineTuning;
using Forgetless.Packaging;
using Forgetless.Runs;
using Forgetless.Stages.Cli;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.Verbs;

/// <summary>
/// `forgetless verify PACKAGE [--key PUBLIC.pem] [--base DIR] [--rerun-gates]`: checks a package folder or archive —
/// every checksum, the recorded verdicts against their numbers, the adapter against the digests the verdicts are bound
/// to, the in-toto statement, the signature (required with --key), that the base model is the judged one and the
/// adapter fits it, and optionally the gates again. Exit 0 when it holds, 1 when a problem was found (each printed
/// with the file, gate or tensor it concerns), 2 for a bad option (a --key that is no public key). Takes no lock.
/// </summary>
public static class VerifyVerb
{
    public static Verb Definition { get; } = new(
        "verify",
        "forgetless verify PACKAGE [--key PUBLIC.pem] [--base DIR] [--rerun-gates] [--config FILE]",
        "check a package (folder, .tar.gz, .zip or .nupkg): checksums, verdicts against their numbers, weights against the judged digests, provenance, signature, adapter shapes against a base, optionally re-run the gates",
        Register);

    private static void Register(VerbContext context)
    {
        var cli = context.Cli;
        if (cli.Positional.Count != 1) throw new UsageException("verify: give one PACKAGE (a package folder or archive)");
        string package = Path.GetFullPath(cli.Positional[0]);
        string? baseModel = cli.Option("base") is { } b ? Path.GetFullPath(b) : null;
        bool rerun = cli.Flag("rerun-gates");
        string? publicKey = cli.Option("key") is { } k ? Path.GetFullPath(k) : null;
        if (publicKey is not null)
        {
            try
            {
                SigningKeys.LoadPublic(publicKey).Dispose();
            }
            catch (PackageException e)
            {
                throw new UsageException(e.Message);
            }
        }
        string? configFile = cli.Option("config");
        _ = cli.Options("set"); // accepted like every verb; only the config file's folder is used (suite paths)
        string suiteDirectory = Path.GetDirectoryName(Path.GetFullPath(configFile ?? Configuration.PipelineConfig.DefaultFileName))!;
        context.AddCommand(async (sp, ct) =>
        {
            var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("forgetless");
            // --rerun-gates scores the suites again, as Evaluate does
            var report = await NativeHeap.RunInMainArena(() => PackageVerifier.Verify(package, baseModel, rerun, suiteDirectory, logger, ct, publicKey));
            foreach (var note in report.Notes) Console.Out.WriteLine("  ok   " + note);
            foreach (var problem in report.Problems) Console.Out.WriteLine("  FAIL " + problem);
            Console.Out.WriteLine(report.Ok ? $"verify: {cli.Positional[0]} is intact" : $"verify: {cli.Positional[0]}: {report.Problems.Count} problem(s)");
            return report.Ok ? ExitCodes.Ok : ExitCodes.Error;
        });
    }
}
