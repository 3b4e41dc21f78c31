using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Forgetless.Stages.Verbs.Init;

/// <summary>
/// The files <c>forgetless init</c> writes into a project folder: the commented pipeline file, the data layout's
/// README, a GitHub Actions workflow, and additions to .gitignore and the local tool manifest. The templates are
/// embedded in the executable (stages/Verbs/Init/*); <c>--example</c> takes the variant that reads the embedded
/// default data, which is copied from the <c>example/</c> folder beside the executable.
/// </summary>
public sealed class ProjectScaffold(bool example)
{
    public const string ToolManifest = ".config/dotnet-tools.json";
    public const string GitIgnore = ".gitignore";
    public const string Workflow = ".github/workflows/forgetless.yml";

    /// <summary>Folders of the own-data layout (data/README.md describes them).</summary>
    public static IReadOnlyList<string> DataFolders { get; } = ["data/models/base", "data/task", "data/replay", "data/heldout"];

    /// <summary>The NuGet id of this build of the tool (forgetless, or forgetless-cuda), for the tool manifest.</summary>
    public static string ToolPackage { get; } =
        typeof(ProjectScaffold).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "ForgetlessToolPackage")?.Value ?? "forgetless";

    /// <summary>Where the embedded default data lies beside the executable (the tool package and the build output carry it).</summary>
    public static string ExampleDirectory => Path.Combine(AppContext.BaseDirectory, "example");

    /// <summary>Files that are the scaffold's own: an existing one is replaced only with --force.</summary>
    public IReadOnlyDictionary<string, string> OwnFiles() => new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [Configuration.PipelineConfig.DefaultFileName] = Template(example ? "forgetless.example.json" : "forgetless.json"),
        ["data/README.md"] = Template(example ? "data-README.example.md" : "data-README.md"),
        [Workflow] = Template("github-workflow.yml"),
    };

    /// <summary>.gitignore with the scaffold's lines added to whatever the folder's file already has.</summary>
    public static string MergedGitIgnore(string? existing)
    {
        var lines = (existing ?? "").Split('\n').Select(l => l.TrimEnd('\r')).ToHashSet(StringComparer.Ordinal);
        var missing = Template("gitignore").Split('\n').Where(l => l.Length > 0 && !lines.Contains(l)).ToList();
        if (existing is null) return string.Join('\n', missing) + "\n";
        if (missing.All(l => l.StartsWith('#'))) return existing;
        return existing + (existing.EndsWith('\n') || existing.Length == 0 ? "" : "\n") + string.Join('\n', missing) + "\n";
    }

    /// <summary>
    /// The local tool manifest with this tool pinned at this version, added to an existing manifest's tools (which
    /// are kept). Throws when the existing file is not a tool manifest.
    /// </summary>
    public static string MergedToolManifest(string? existing, string path)
    {
        var fresh = JsonNode.Parse(Template("dotnet-tools.json"))!.AsObject();
        if (existing is null) return fresh.ToJsonString(Indented) + "\n";
        JsonObject manifest;
        try
        {
            manifest = JsonNode.Parse(existing, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true })?.AsObject()
                       ?? throw new UserInputException($"{path}: empty; expected a dotnet tool manifest");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new UserInputException($"{path}: not a dotnet tool manifest ({e.Message}); fix or remove it, then run init again");
        }
        if (manifest["tools"] is not JsonObject tools) manifest["tools"] = tools = new JsonObject();
        tools[ToolPackage] = fresh["tools"]![ToolPackage]!.DeepClone();
        return manifest.ToJsonString(Indented) + "\n";
    }

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>An embedded template with {{toolPackage}} and {{version}} filled in.</summary>
    public static string Template(string name)
    {
        using var stream = typeof(ProjectScaffold).Assembly.GetManifestResourceStream("init/" + name)
                           ?? throw new InvalidOperationException($"template {name} is not embedded in the executable");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd().Replace("{{toolPackage}}", ToolPackage).Replace("{{version}}", ToolVersion.Current);
    }

    /// <summary>The example's files, relative to the example folder and to the project alike, e.g. data/corpora/cloze.jsonl.</summary>
    public static IEnumerable<string> ExampleFiles()
    {
        if (!Directory.Exists(ExampleDirectory))
            throw new UserInputException($"init --example: this forgetless has no example data (looked in {ExampleDirectory}); " +
                                         "the tool package and the repository's build carry it beside the executable");
        return Directory.EnumerateFiles(ExampleDirectory, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(ExampleDirectory, f).Replace('\\', '/'))
            .Order(StringComparer.Ordinal);
    }
}
