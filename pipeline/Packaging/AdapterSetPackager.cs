using System.Text.Json.Nodes;
using Forgetless.Continual;
using Forgetless.Peft;
using Forgetless.Runs;

namespace Forgetless.Packaging;

/// <summary>
/// Builds a release package of several named adapters — task isolation's one adapter per task — in PEFT's multi-adapter
/// layout, gated by the continual gates of the strategy that trained them:
/// <code>
///   NAME/
///     TASK/adapter_config.json, TASK/adapter_model.safetensors   one PEFT folder per task (load_adapter(NAME/TASK, adapter_name=TASK))
///     router.json                 the task router's centroids (forgetless generate --adapter NAME --task auto)
///     README.md                   model card: tasks, accuracy matrix, router accuracy, gates
///     forgetless.manifest.json    provenance: adapters packaged and scored, base model, continual summary, gate verdicts, config
///     provenance.intoto.json      in-toto statement, SLSA provenance predicate ( + .jsonl: signed DSSE envelope)
///     SHA256SUMS
///   NAME-VERSION.tar.gz
/// </code>
/// The adapters are copied first; <see cref="ConfirmScored"/> then checks that the copies are the adapters the
/// strategy's scores (and so its gates) were computed with.
/// </summary>
public sealed class AdapterSetPackager
{
    public const string Format = "forgetless.adapter-set/1";
    public const string BuildType = "urn:forgetless:buildtype:adapter-set:v1";

    public required PackageOptions Options { get; init; }
    public required string Strategy { get; init; }
    /// <summary>Task name → the adapter folder the strategy trained for it, in task order.</summary>
    public required IReadOnlyList<(string Task, string Folder)> Adapters { get; init; }
    public string? Router { get; init; }
    public required string BaseModel { get; init; }
    /// <summary>The strategy's summary (tasks, R, ACC/BWT/FWT/forgetting with intervals, router accuracy).</summary>
    public required JsonObject Continual { get; init; }
    public required IReadOnlyList<ContinualGateVerdict> Gates { get; init; }
    public required JsonObject Config { get; init; }
    public required string SourceRevision { get; init; }
    public required IReadOnlyDictionary<string, string> Tools { get; init; }
    /// <summary>Given the copied adapters' digests, null when they are the ones scored; otherwise why not.</summary>
    public required Func<IReadOnlyDictionary<string, FolderDigest>, string?> ConfirmScored { get; init; }
    public long? Epoch { get; init; }
    public string KeyDirectory { get; init; } = Directory.GetCurrentDirectory();

    public string BaseModelName => Options.BaseModelName.Length > 0
        ? Options.BaseModelName
        : Path.GetFileName(Path.GetFullPath(BaseModel).TrimEnd(Path.DirectorySeparatorChar));

    /// <summary>Null when every gate passed and its verdict follows from its numbers; otherwise why no package may be built.</summary>
    public static string? GateRefusal(IReadOnlyList<ContinualGateVerdict> gates, string source)
    {
        var failed = gates.Where(g => !g.Passed).ToList();
        if (failed.Count > 0) return "refusing to package: continual gates failed: " + string.Join("; ", failed.Select(g => g.Message));
        var inconsistent = gates.Where(g => !g.Consistent).ToList();
        if (inconsistent.Count > 0)
            return $"refusing to package: {source} records verdicts that do not follow from their numbers: "
                   + string.Join("; ", inconsistent.Select(g => $"'{g.Name}' judged {g.Judged} against {g.Kind} {g.Threshold}"));
        return null;
    }

    public PackageResult Build(string outputDirectory, CancellationToken cancellationToken = default)
    {
        if (GateRefusal(Gates, "the continual run") is { } refusal) throw new PackageException(refusal);
        using var signingKey = Options.SigningKey.Length > 0 ? SigningKeys.LoadPrivate(Options.SigningKey, KeyDirectory) : null;
        string snapshot = Path.Combine(outputDirectory, ".adapters-being-packaged");
        try
        {
            if (Directory.Exists(snapshot)) Directory.Delete(snapshot, recursive: true);
            var scored = new SortedDictionary<string, FolderDigest>(StringComparer.Ordinal);
            foreach (var (task, folder) in Adapters)
            {
                FolderInstall.Replace(folder, Path.Combine(snapshot, task));
                scored[task] = FolderDigest.Of(Path.Combine(snapshot, task));
            }
            if (ConfirmScored(scored) is { } notScored) throw new PackageException(notScored);
            return Write(outputDirectory, snapshot, scored, FolderDigest.Of(BaseModel), signingKey, cancellationToken);
        }
        finally
        {
            if (Directory.Exists(snapshot)) Directory.Delete(snapshot, recursive: true);
        }
    }

    private PackageResult Write(string outputDirectory, string snapshot, IReadOnlyDictionary<string, FolderDigest> scored, FolderDigest baseModel,
        System.Security.Cryptography.ECDsa? signingKey, CancellationToken cancellationToken)
    {
        string folder = Path.Combine(outputDirectory, Options.Name);
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        Directory.CreateDirectory(folder);

        var adapters = new JsonObject();
        var types = new List<string>();
        foreach (var (task, _) in Adapters)
        {
            cancellationToken.ThrowIfCancellationRequested();
            string type = AdapterExport.Write(Path.Combine(snapshot, task), BaseModel, BaseModelName, Path.Combine(folder, task));
            types.Add(type);
            var files = FolderDigest.Of(Path.Combine(folder, task)).Files.Select(f => f with { Path = task + "/" + f.Path });
            adapters[task] = new JsonObject
            {
                ["peft_type"] = type,
                ["files"] = new JsonArray(files.Select(f => (JsonNode)f.ToJson()).ToArray()),
                ["scored"] = scored[task].ToJson(),
            };
        }
        string? routerSha = null;
        if (Router is not null)
        {
            AtomicFile.WriteAllBytes(Path.Combine(folder, AdapterSet.RouterFile), File.ReadAllBytes(Router));
            routerSha = FileHashes.Compute(Path.Combine(folder, AdapterSet.RouterFile));
        }

        var baseJson = baseModel.ToJson();
        baseJson["name"] = BaseModelName;
        var manifest = new JsonObject
        {
            ["format"] = Format,
            ["package"] = new JsonObject { ["name"] = Options.Name, ["version"] = Options.Version },
            ["strategy"] = Strategy,
            ["adapters"] = adapters,
            ["router"] = routerSha is null ? null : new JsonObject { ["path"] = AdapterSet.RouterFile, ["sha256"] = routerSha },
            ["base_model"] = baseJson,
            ["continual"] = new JsonObject { ["summary"] = Continual.DeepClone(), ["gates"] = GatesJson(), ["passed"] = Gates.All(g => g.Passed) },
            ["config"] = new JsonObject { ["sha256"] = FileHashes.Of(Config.ToJsonString()), ["sections"] = Config.DeepClone() },
            ["source"] = new JsonObject { ["revision"] = SourceRevision },
            ["tools"] = new JsonObject(Tools.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => KeyValuePair.Create(t.Key, (JsonNode?)t.Value))),
        };
        AtomicFile.WriteAllText(Path.Combine(folder, Provenance.FileName), SortedJson.Serialize(manifest));
        AtomicFile.WriteAllText(Path.Combine(folder, "README.md"), AdapterSetCard.Write(Options, BaseModelName, Strategy, Adapters.Select(a => a.Task).ToList(), types, Continual, Gates));

        var dependencies = baseModel.Files.Select(f => (JsonNode)InTotoStatement.Descriptor("base_model/" + f.Path, f.Sha256))
            .Concat(scored.SelectMany(s => s.Value.Files.Select(f => (JsonNode)InTotoStatement.Descriptor($"scored_adapter/{s.Key}/{f.Path}", f.Sha256))));
        var byproduct = new JsonObject
        {
            ["name"] = "continual-evaluation",
            ["digest"] = new JsonObject { ["sha256"] = FileHashes.Of(SortedJson.Serialize(manifest["continual"]!)) },
            ["annotations"] = new JsonObject
            {
                ["strategy"] = Strategy,
                ["passed"] = Gates.All(g => g.Passed),
                ["base_model_digest"] = baseModel.Digest,
                ["gates"] = GatesJson(),
            },
        };
        string statement = SortedJson.Serialize(InTotoStatement.Compose(folder, BuildType, Options.Name, Options.Version, Config, SourceRevision, Tools,
            dependencies, byproduct, Options.BuilderId));
        AtomicFile.WriteAllText(Path.Combine(folder, InTotoStatement.FileName), statement);
        if (signingKey is not null)
        {
            var envelope = Dsse.Sign(System.Text.Encoding.UTF8.GetBytes(statement), Dsse.InTotoPayloadType, signingKey);
            AtomicFile.WriteAllText(Path.Combine(folder, InTotoStatement.EnvelopeFileName), envelope.ToJsonString() + "\n");
        }
        Sha256Sums.Write(folder);

        string archive = Path.Combine(outputDirectory, Options.ArchiveFileName);
        if (Options.Archive == ArchiveFormat.Zip) DeterministicArchive.WriteZip(folder, Options.Name, archive, Epoch);
        else DeterministicArchive.WriteTarGz(folder, Options.Name, archive, Epoch);
        return new PackageResult(folder, archive, null, string.Join(",", types.Distinct()), Sha256Sums.Files(folder).Count);
    }

    private JsonArray GatesJson() => new(Gates.Select(g => (JsonNode)new JsonObject
    {
        ["name"] = g.Name,
        ["kind"] = g.Kind,
        ["threshold"] = g.Threshold,
        ["value"] = g.Value,
        ["judged"] = g.Judged,
        ["passed"] = g.Passed,
        ["message"] = g.Message,
    }).ToArray());
}
