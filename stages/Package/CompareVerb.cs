using Forgetless.Packaging;
using Forgetless.Runs;
using Forgetless.Stages.Cli;
using Forgetless.Stages.Verbs;

namespace Forgetless.Stages.Package;

/// <summary>
/// `forgetless compare A B`: are two packages (folders, archives, or whole runs/package outputs) the same
/// bytes? Prints the first differing file and exits 1 when not — what the Cake Rebuild target checks.
/// </summary>
public static class CompareVerb
{
    public static Verb Definition { get; } = new(
        "compare",
        "forgetless compare A B",
        "compare two packages or package outputs byte for byte (reproducible rebuild check); names the first differing file",
        Register);

    private static void Register(VerbContext context)
    {
        var cli = context.Cli;
        if (cli.Positional.Count != 2) throw new UsageException("compare: give two packages, folders or archives: forgetless compare A B");
        string a = Path.GetFullPath(cli.Positional[0]), b = Path.GetFullPath(cli.Positional[1]);
        _ = cli.Option("config"); // Cake passes the pipeline options to every verb; compare needs none
        _ = cli.Options("set");
        context.AddCommand((_, _) =>
        {
            var differences = PackageComparison.Compare(a, b);
            if (differences.Count == 0)
            {
                Console.Out.WriteLine($"compare: {cli.Positional[0]} and {cli.Positional[1]} are byte-identical");
                return Task.FromResult(ExitCodes.Ok);
            }
            Console.Out.WriteLine($"compare: first differing file: {differences[0].Path} — {differences[0].Reason}");
            foreach (var d in differences.Skip(1).Take(20)) Console.Out.WriteLine($"  also: {d.Path} — {d.Reason}");
            Console.Out.WriteLine($"compare: {differences.Count} file(s) differ");
            return Task.FromResult(ExitCodes.Error);
        });
    }
}
