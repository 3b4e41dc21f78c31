using System.Text.Json;
using System.Text.Json.Nodes;
using Forgetless.Runs;

namespace Forgetless.Packaging;

/// <summary>
/// The package's provenance as an in-toto Statement (v1) with a SLSA Provenance (v1) predicate — the format CI systems,
/// registries and tools such as slsa-verifier and cosign read. The subjects are the package's files (adapter, model card,
/// manifest, merged model) by SHA-256; the build definition holds the configuration (external parameters) and the
/// inputs by digest: the base model's files, the evaluated adapter's files, the evaluation suites and the source commit.
/// The evaluation is a byproduct, annotated with every gate verdict. No timestamps: a rebuild gives the same bytes.
/// </summary>
public static class InTotoStatement
{
    public const string FileName = "provenance.intoto.json";
    /// <summary>The DSSE envelope of the statement when the package is signed: one JSON line, as SLSA's *.intoto.jsonl files.</summary>
    public const string EnvelopeFileName = "provenance.intoto.jsonl";
    public const string StatementType = "https://in-toto.io/Statement/v1";
    public const string PredicateType = "https://slsa.dev/provenance/v1";
    /// <summary>What a Forgetless package build is; docs/security.md describes its parameters.</summary>
    public const string BuildType = "urn:forgetless:buildtype:package:v1";

    /// <summary>Files a statement does not name: the checksums, the statement itself and its envelope.</summary>
    public static bool IsSubject(string relativePath) => relativePath is not (Sha256Sums.FileName or FileName or EnvelopeFileName);

    public static JsonObject Build(string packageFolder, Provenance provenance, JudgedWeights judged, string builderId)
    {
        var dependencies = new List<JsonNode>();
        dependencies.AddRange(judged.BaseModel.Files.Select(f => (JsonNode)Descriptor("base_model/" + f.Path, f.Sha256)));
        dependencies.AddRange(judged.Adapter.Files.Select(f => (JsonNode)Descriptor("evaluated_adapter/" + f.Path, f.Sha256)));
        dependencies.AddRange(provenance.Suites.OrderBy(s => s.Key, StringComparer.Ordinal).Select(s => (JsonNode)Descriptor("evaluation_suite/" + s.Key, s.Value)));

        var gates = provenance.Evaluation["gates"] as JsonArray ?? [];
        var evaluation = new JsonObject
        {
            ["name"] = "evaluation",
            ["digest"] = new JsonObject { ["sha256"] = FileHashes.Of(SortedJson.Serialize(provenance.Evaluation)) },
            ["annotations"] = new JsonObject
            {
                ["passed"] = provenance.Evaluation["passed"]?.DeepClone(),
                ["evaluated_adapter_digest"] = judged.Adapter.Digest,
                ["base_model_digest"] = judged.BaseModel.Digest,
                ["gates"] = new JsonArray(gates.Select(g => (JsonNode)new JsonObject
                {
                    ["name"] = g?["name"]?.DeepClone(),
                    ["kind"] = g?["kind"]?.DeepClone(),
                    ["threshold"] = g?["threshold"]?.DeepClone(),
                    ["observed"] = g?["observed"]?.DeepClone(),
                    ["passed"] = g?["passed"]?.DeepClone(),
                }).ToArray()),
            },
        };
        return Compose(packageFolder, BuildType, provenance.Name, provenance.Version, provenance.Config, provenance.SourceRevision, provenance.Tools,
            dependencies, evaluation, builderId);
    }

    /// <summary>
    /// A statement over every file of <paramref name="packageFolder"/> (but the checksums and the statement itself): the
    /// package name, version and configuration as external parameters, the source commit and <paramref name="dependencies"/>
    /// as resolved dependencies, and <paramref name="evaluation"/> as the run's byproduct.
    /// </summary>
    public static JsonObject Compose(string packageFolder, string buildType, string name, string version, JsonObject config, string sourceRevision,
        IReadOnlyDictionary<string, string> tools, IEnumerable<JsonNode> dependencies, JsonObject evaluation, string builderId)
    {
        var subjects = Sha256Sums.Files(packageFolder).Where(IsSubject)
            .Select(f => (JsonNode)Descriptor(f, FileHashes.Compute(Path.Combine(packageFolder, f)))).ToArray();
        var resolved = new List<JsonNode>();
        if (sourceRevision != SourceRevision.Unknown)
            resolved.Add(new JsonObject { ["name"] = "source", ["digest"] = new JsonObject { ["gitCommit"] = sourceRevision } });
        resolved.AddRange(dependencies);
        return new JsonObject
        {
            ["_type"] = StatementType,
            ["subject"] = new JsonArray(subjects),
            ["predicateType"] = PredicateType,
            ["predicate"] = new JsonObject
            {
                ["buildDefinition"] = new JsonObject
                {
                    ["buildType"] = buildType,
                    ["externalParameters"] = new JsonObject
                    {
                        ["package"] = new JsonObject { ["name"] = name, ["version"] = version },
                        ["config"] = config.DeepClone(),
                    },
                    ["resolvedDependencies"] = new JsonArray(resolved.ToArray()),
                },
                ["runDetails"] = new JsonObject
                {
                    ["builder"] = new JsonObject
                    {
                        ["id"] = builderId,
                        ["version"] = new JsonObject(tools.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => KeyValuePair.Create(t.Key, (JsonNode?)t.Value))),
                    },
                    ["byproducts"] = new JsonArray(evaluation),
                },
            },
        };
    }

    public static JsonObject Descriptor(string name, string sha256) => new() { ["name"] = name, ["digest"] = new JsonObject { ["sha256"] = sha256 } };

    /// <summary>
    /// Checks the statement in a package folder against the files: the types, every subject's digest, and that every
    /// file is a subject. Returns the problems (empty: the statement describes exactly these files).
    /// </summary>
    /// <param name="withoutMerged">The folder came from a .nupkg, which leaves <c>merged/</c> out by design.</param>
    public static IReadOnlyList<string> Check(string packageFolder, byte[] statementBytes, string source, bool withoutMerged = false)
    {
        JsonNode? statement;
        try
        {
            statement = JsonNode.Parse(statementBytes);
        }
        catch (JsonException e)
        {
            return [$"{source}: not valid JSON ({e.Message})"];
        }
        var problems = new List<string>();
        if (statement?["_type"]?.ToString() != StatementType) problems.Add($"{source}: _type is '{statement?["_type"]}', expected {StatementType}");
        if (statement?["predicateType"]?.ToString() != PredicateType) problems.Add($"{source}: predicateType is '{statement?["predicateType"]}', expected {PredicateType}");
        var named = new HashSet<string>(StringComparer.Ordinal);
        foreach (var subject in statement?["subject"] as JsonArray ?? [])
        {
            string name = subject?["name"]?.ToString() ?? "";
            string? digest = subject?["digest"]?["sha256"]?.ToString();
            string full = Path.GetFullPath(Path.Combine(packageFolder, name));
            if (name.Length == 0 || !full.StartsWith(Path.GetFullPath(packageFolder) + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            {
                problems.Add($"{source}: subject '{name}' is not a file of the package");
                continue;
            }
            named.Add(name);
            if (!File.Exists(full))
            {
                if (!(withoutMerged && name.StartsWith("merged/", StringComparison.Ordinal)))
                    problems.Add($"{source}: subject '{name}' is missing from the package");
            }
            else if (FileHashes.Compute(full) != digest) problems.Add($"{name}: not the file the statement {source} names (its SHA-256 differs)");
        }
        foreach (var file in Sha256Sums.Files(packageFolder).Where(IsSubject).Where(f => !named.Contains(f)))
            problems.Add($"{file}: not a subject of {source} (added after packaging?)");
        return problems;
    }
}
