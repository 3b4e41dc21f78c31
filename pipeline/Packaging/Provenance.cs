using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Forgetless.Runs;

namespace Forgetless.Packaging;

/// <summary>
/// What a package was built from, written to <c>forgetless.manifest.json</c>: the base model's files, the
/// prepared data, the configuration, the source revision, the tool versions and the evaluation with its gate
/// verdicts — bound to the weights they judged: the packaged adapter's files and the evaluated adapter's files by
/// SHA-256 (<see cref="JudgedWeights"/>). It holds no timestamps and no absolute paths, so a rebuild from the same
/// inputs writes the same bytes.
/// </summary>
public sealed record Provenance
{
    public const string FileName = "forgetless.manifest.json";
    /// <summary>Version 2 binds the verdicts to the weights; a version-1 manifest cannot be verified.</summary>
    public const string Format = "forgetless.package/2";

    public required string Name { get; init; }
    public required string Version { get; init; }
    public required string PeftType { get; init; }
    public required string BaseModelName { get; init; }
    /// <summary>The weights the evaluation judged: the candidate adapter's files and the base model's files.</summary>
    public required JudgedWeights Judged { get; init; }
    /// <summary>The adapter files as packaged (LoRA is rewritten to PEFT's exact form; others are copied with a sorted config).</summary>
    public required IReadOnlyList<FileDigest> AdapterFiles { get; init; }
    /// <summary>The prepare stage's outputs digest (its manifest), or null when the adapter did not come from this pipeline.</summary>
    public string? PreparedData { get; init; }
    /// <summary>Every configuration section, canonical JSON (run.root left out: it says where outputs go, not what they are).</summary>
    public required JsonObject Config { get; init; }
    public required string SourceRevision { get; init; }
    public required IReadOnlyDictionary<string, string> Tools { get; init; }
    /// <summary>results.json of the evaluate stage without its date, config paths and samples.</summary>
    public required JsonObject Evaluation { get; init; }
    /// <summary>SHA-256 of each evaluation suite file (what a re-run of the gates must score).</summary>
    public IReadOnlyDictionary<string, string> Suites { get; init; } = new Dictionary<string, string>();

    public JsonObject ToJson()
    {
        string configText = Config.ToJsonString();
        var baseModel = Judged.BaseModel.ToJson();
        baseModel["name"] = BaseModelName;
        var evaluation = Evaluation.DeepClone().AsObject();
        evaluation["weights"] = new JsonObject { ["adapter"] = Judged.Adapter.Digest, ["base_model"] = Judged.BaseModel.Digest };
        return new JsonObject
        {
            ["format"] = Format,
            ["package"] = new JsonObject { ["name"] = Name, ["version"] = Version },
            ["adapter"] = new JsonObject
            {
                ["peft_type"] = PeftType,
                ["files"] = new JsonArray(AdapterFiles.OrderBy(f => f.Path, StringComparer.Ordinal).Select(f => (JsonNode)f.ToJson()).ToArray()),
                ["evaluated"] = Judged.Adapter.ToJson(),
            },
            ["base_model"] = baseModel,
            ["data"] = new JsonObject { ["prepare_outputs_digest"] = PreparedData },
            ["config"] = new JsonObject { ["sha256"] = FileHashes.Of(configText), ["sections"] = Config.DeepClone() },
            ["source"] = new JsonObject { ["revision"] = SourceRevision },
            ["tools"] = new JsonObject(Tools.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => KeyValuePair.Create(t.Key, (JsonNode?)t.Value))),
            ["evaluation"] = evaluation,
            ["evaluation_suites"] = new JsonObject(Suites.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => KeyValuePair.Create(t.Key, (JsonNode?)t.Value))),
        };
    }

    /// <summary>The parts of results.json that describe the candidate, not the run (no date, paths or samples).</summary>
    public static JsonObject EvaluationSummary(JsonObject results)
    {
        var summary = new JsonObject();
        foreach (var key in new[] { "passed", "gates", "results", "base_results", "higher_is_better", "n-samples", "forgetting", "gain", "comparison" })
            if (results[key] is { } value) summary[key] = value.DeepClone();
        if (results["config"]?["options"] is { } options) summary["options"] = options.DeepClone();
        // Whether base scores came from the cache says how the run went, not what the candidate is.
        if (summary["comparison"] is JsonObject comparison)
            foreach (var (_, suite) in comparison)
                (suite as JsonObject)?.Remove("base_source");
        return summary;
    }

    /// <summary>Tool versions: forgetless, TorchSharp, libtorch, the .NET runtime and OS family.</summary>
    public static IReadOnlyDictionary<string, string> ToolVersions(string forgetlessVersion)
    {
        string torchSharp = typeof(TorchSharp.torch).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
                            ?? typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString() ?? "unknown";
        string libtorch;
        try
        {
            libtorch = TorchSharp.torch.__version__;
        }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or NotSupportedException)
        {
            libtorch = "unknown";
        }
        return new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["forgetless"] = forgetlessVersion,
            ["torchsharp"] = torchSharp,
            ["libtorch"] = libtorch,
            ["dotnet"] = RuntimeInformation.FrameworkDescription,
        };
    }

    /// <summary>Canonical JSON of every configuration section, without <c>run.root</c>.</summary>
    public static JsonObject ConfigSections(IEnumerable<KeyValuePair<string, string>> canonicalSections)
    {
        var result = new JsonObject();
        foreach (var (name, json) in canonicalSections.OrderBy(s => s.Key, StringComparer.Ordinal))
        {
            var node = JsonNode.Parse(json)!;
            if (name == "run" && node is JsonObject run) run.Remove("root");
            result[name] = node;
        }
        return result;
    }
}

/// <summary>The git commit the source tree is at, read from <c>.git</c> (no git executable needed).</summary>
public static class SourceRevision
{
    public const string Unknown = "unknown";

    /// <summary>
    /// Walks up from <paramref name="directory"/> to a <c>.git</c> folder (or a worktree's <c>.git</c> file),
    /// resolves HEAD through loose refs and packed-refs, and returns the 40-hex commit; "unknown" when there is none.
    /// </summary>
    public static string Of(string directory)
    {
        try
        {
            for (var dir = new DirectoryInfo(Path.GetFullPath(directory)); dir is not null; dir = dir.Parent)
            {
                string dotGit = Path.Combine(dir.FullName, ".git");
                if (Directory.Exists(dotGit)) return Resolve(dotGit, dotGit);
                if (File.Exists(dotGit))
                {
                    string text = File.ReadAllText(dotGit).Trim();
                    if (!text.StartsWith("gitdir:", StringComparison.Ordinal)) return Unknown;
                    string gitDir = Path.GetFullPath(text["gitdir:".Length..].Trim(), dir.FullName);
                    string commonFile = Path.Combine(gitDir, "commondir");
                    string common = File.Exists(commonFile) ? Path.GetFullPath(File.ReadAllText(commonFile).Trim(), gitDir) : gitDir;
                    return Resolve(gitDir, common);
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Unknown;
        }
        return Unknown;
    }

    private static string Resolve(string gitDir, string commonDir)
    {
        string headFile = Path.Combine(gitDir, "HEAD");
        if (!File.Exists(headFile)) return Unknown;
        string head = File.ReadAllText(headFile).Trim();
        for (int depth = 0; depth < 8; depth++)
        {
            if (!head.StartsWith("ref:", StringComparison.Ordinal))
                return IsCommit(head) ? head.ToLowerInvariant() : Unknown;
            string name = head["ref:".Length..].Trim();
            string? loose = new[] { Path.Combine(gitDir, name), Path.Combine(commonDir, name) }.FirstOrDefault(File.Exists);
            if (loose is not null)
            {
                head = File.ReadAllText(loose).Trim();
                continue;
            }
            string packed = Path.Combine(commonDir, "packed-refs");
            if (!File.Exists(packed)) return Unknown;
            var line = File.ReadLines(packed).FirstOrDefault(l => l.EndsWith(" " + name, StringComparison.Ordinal) && !l.StartsWith('#'));
            return line is not null && IsCommit(line[..40]) ? line[..40].ToLowerInvariant() : Unknown;
        }
        return Unknown;
    }

    private static bool IsCommit(string s) => s.Length == 40 && s.All(Uri.IsHexDigit);
}
