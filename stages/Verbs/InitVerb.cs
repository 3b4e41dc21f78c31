using Forgetless.Runs;
using Forgetless.Stages.Cli;
using Forgetless.Stages.Verbs.Init;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.Verbs;

/// <summary>
/// `forgetless init [DIR] [--example] [--force]`: scaffolds a project folder — a commented forgetless.json, the
/// data layout (data/README.md), a GitHub Actions workflow, the tool in the local tool manifest and the run store
/// in .gitignore. With --example it also copies the embedded default (base model and data) so that the first run
/// works offline. Existing files are never overwritten without --force; .gitignore and the tool manifest are
/// added to, not replaced.
/// </summary>
public static class InitVerb
{
    public static Verb Definition { get; } = new(
        "init",
        "forgetless init [DIR] [--example] [--force]",
        "scaffold a project folder: commented forgetless.json, data layout, CI workflow, tool manifest (--example: with the embedded default model and data)",
        Register);

    private static void Register(VerbContext context)
    {
        var cli = context.Cli;
        if (cli.Positional.Count > 1) throw new UsageException("init: give at most one folder (default: the current one)");
        string root = Path.GetFullPath(cli.Positional.Count == 1 ? cli.Positional[0] : ".");
        bool example = cli.Flag("example");
        bool force = cli.Flag("force");
        var scaffold = new ProjectScaffold(example);
        var own = scaffold.OwnFiles();
        var data = example ? ProjectScaffold.ExampleFiles().ToList() : [];

        // Refuse before writing anything, naming every file that is in the way.
        var existing = own.Keys.Concat(data).Where(f => File.Exists(Path.Combine(root, f))).ToList();
        if (existing.Count > 0 && !force)
            throw new UsageException($"init: {root} already has {string.Join(", ", existing.Take(5))}{(existing.Count > 5 ? $" and {existing.Count - 5} more" : "")}; " +
                                     "pass --force to overwrite them");
        string manifestPath = Path.Combine(root, ProjectScaffold.ToolManifest);
        string manifest = ProjectScaffold.MergedToolManifest(ReadIfExists(manifestPath), manifestPath);

        context.AddCommand((sp, ct) =>
        {
            var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("forgetless");
            foreach (var (file, text) in own) AtomicFile.WriteAllText(Path.Combine(root, file), text);
            string gitignore = Path.Combine(root, ProjectScaffold.GitIgnore);
            AtomicFile.WriteAllText(gitignore, ProjectScaffold.MergedGitIgnore(ReadIfExists(gitignore)));
            AtomicFile.WriteAllText(manifestPath, manifest);
            if (example)
            {
                foreach (var file in data)
                {
                    ct.ThrowIfCancellationRequested();
                    using var source = File.OpenRead(Path.Combine(ProjectScaffold.ExampleDirectory, file));
                    AtomicFile.Write(Path.Combine(root, file), target => source.CopyTo(target));
                }
            }
            else
            {
                foreach (var folder in ProjectScaffold.DataFolders) Directory.CreateDirectory(Path.Combine(root, folder));
            }
            logger.LogInformation("init: wrote {Files} in {Root}{Example}", string.Join(", ", own.Keys.Append(ProjectScaffold.GitIgnore).Append(ProjectScaffold.ToolManifest)),
                root, example ? $", and the example's {data.Count} data files under data/" : "");
            Console.Out.WriteLine(example
                ? "next: `forgetless package` runs every stage on the example (about 5 minutes on 2 CPU cores); `forgetless status` shows where it stands"
                : "next: put your model and data where data/README.md says, then `forgetless package`");
            return Task.FromResult(ExitCodes.Ok);
        });
    }

    private static string? ReadIfExists(string path) => File.Exists(path) ? File.ReadAllText(path) : null;
}
