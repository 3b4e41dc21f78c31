using System.Text.Json;
using System.Text.Json.Nodes;
using Forgetless.Peft;
using Forgetless.Runs;

namespace Forgetless.Packaging;

/// <summary>What <see cref="AdapterPackager.Build"/> wrote.</summary>
public sealed record PackageResult(string Folder, string Archive, string? Nupkg, string PeftType, int Files);

/// <summary>
/// Builds a release package from the adapter that passed evaluation — and only from that one: its bytes must be the
/// ones the evaluate stage judged (<see cref="JudgedWeights"/>), on the same base model, and the recorded verdicts must
/// follow from their numbers (<see cref="RecordedVerdicts"/>):
/// <code>
///   NAME/                       a PEFT adapter folder (PeftModel.from_pretrained(base, "NAME") loads it)
///     adapter_config.json
///     adapter_model.safetensors
///     README.md                 model card: method, data, base vs candidate with intervals, gates
///     forgetless.manifest.json  provenance: weights judged and packaged, base model, data, config, revision, tools, evaluation
///     provenance.intoto.json    the same as an in-toto statement with a SLSA provenance predicate over every file
///     provenance.intoto.jsonl   (package.signingKey) the statement in a signed DSSE envelope
///     merged/                   (package.exportMerged) the base with the adapter folded in, HF format
///     SHA256SUMS                sha256sum format over every other file but the envelope (which vouches for itself)
///   NAME-VERSION.tar.gz         (or .zip) the folder, deterministic
///   NAME.VERSION.nupkg          (package.nupkg) the folder minus merged/ as contentFiles
/// </code>
/// Same inputs give the same bytes: nothing written depends on the clock, the machine's paths or the user — except
/// the signature, since ECDSA signatures are randomized.
/// </summary>
public sealed class AdapterPackager
{
    public required PackageOptions Options { get; init; }
    public required string Adapter { get; init; }
    public required string BaseModel { get; init; }
    /// <summary>The evaluate stage's output folder (results.json, judged-weights.json and its stage manifest).</summary>
    public required string Evaluation { get; init; }
    public string? PreparedData { get; init; }
    public required JsonObject Config { get; init; }
    public required string SourceRevision { get; init; }
    public required IReadOnlyDictionary<string, string> Tools { get; init; }
    public long? Epoch { get; init; }
    /// <summary>The folder a relative <c>package.signingKey</c> path is relative to (the pipeline file's folder).</summary>
    public string KeyDirectory { get; init; } = Directory.GetCurrentDirectory();

    public string BaseModelName => Options.BaseModelName.Length > 0
        ? Options.BaseModelName
        : Path.GetFileName(Path.GetFullPath(BaseModel).TrimEnd(Path.DirectorySeparatorChar));

    /// <summary>
    /// Null when the evaluation passed every gate; otherwise why the package must not be built
    /// (a failed gate recorded in the evaluate manifest or results.json, or no evaluation at all).
    /// </summary>
    public static string? GateRefusal(string evaluateOutput)
    {
        var manifest = StageManifest.TryRead(evaluateOutput);
        if (manifest?.Failure is { } failure)
            return $"refusing to package: the evaluate stage recorded a failed release gate — {failure}";
        string results = Path.Combine(evaluateOutput, "results.json");
        if (!File.Exists(results))
            return $"refusing to package: {results} not found; run `forgetless evaluate` first";
        var json = ReadResults(results);
        if (json["passed"] is not JsonValue passed || !passed.TryGetValue<bool>(out bool ok))
            return $"refusing to package: {results} has no 'passed' verdict";
        if (!ok)
        {
            var failed = (json["gates"] as JsonArray ?? []).Where(g => g?["passed"]?.GetValue<bool>() == false).Select(g => g?["message"]?.ToString() ?? g?["name"]?.ToString());
            return $"refusing to package: {results} says the release gates failed: " + string.Join("; ", failed);
        }
        var contradictions = RecordedVerdicts.Check(json, results);
        if (contradictions.Count > 0)
            return $"refusing to package: {results} holds verdicts that do not follow from their numbers: " + string.Join("; ", contradictions);
        return null;
    }

    /// <summary>
    /// Null when this adapter may be packaged: the gates passed (<see cref="GateRefusal"/>) and the adapter and base model
    /// are, byte for byte, the ones the evaluate stage judged. Otherwise why not.
    /// </summary>
    public string? RefusalReason() => GateRefusal(Evaluation) ?? WeightsRefusal(FolderDigest.Of(Adapter), FolderDigest.Of(BaseModel));

    private string? WeightsRefusal(FolderDigest adapter, FolderDigest baseModel)
    {
        if (JudgedWeights.Read(Evaluation) is not { } judged)
            return $"refusing to package: {Path.Combine(Evaluation, JudgedWeights.FileName)} not found — the evaluation does not say which weights it judged; " +
                   "rerun `forgetless evaluate`";
        if (adapter.Digest != judged.Adapter.Digest)
            return $"refusing to package: {Adapter} (digest {adapter.Short}) is not the adapter the evaluate stage judged (digest {judged.Adapter.Short}: " +
                   $"{adapter.DifferencesFrom(judged.Adapter)}); evaluate it first (`forgetless evaluate --adapter DIR`), then package";
        if (baseModel.Digest != judged.BaseModel.Digest)
            return $"refusing to package: the base model {BaseModel} (digest {baseModel.Short}) is not the one the evaluate stage judged against " +
                   $"(digest {judged.BaseModel.Short}: {baseModel.DifferencesFrom(judged.BaseModel)})";
        return null;
    }

    private static JsonObject ReadResults(string path)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new PackageException($"{path}: expected a JSON object");
        }
        catch (JsonException e)
        {
            throw new PackageException($"{path}: not valid JSON ({e.Message})");
        }
    }

    /// <summary>
    /// Writes the package folder and archives into <paramref name="outputDirectory"/>. The adapter is copied first and
    /// the copy is what is checked against the judged digest and exported, so the folder cannot change in between.
    /// </summary>
    public PackageResult Build(string outputDirectory, CancellationToken cancellationToken = default)
    {
        if (GateRefusal(Evaluation) is { } gates) throw new PackageException(gates);
        using var signingKey = Options.SigningKey.Length > 0 ? SigningKeys.LoadPrivate(Options.SigningKey, KeyDirectory) : null;
        string snapshot = Path.Combine(outputDirectory, ".adapter-being-packaged");
        try
        {
            FolderInstall.Replace(Adapter, snapshot);
            var baseModel = FolderDigest.Of(BaseModel);
            if (WeightsRefusal(FolderDigest.Of(snapshot), baseModel) is { } weights) throw new PackageException(weights);
            var result = Write(outputDirectory, snapshot, JudgedWeights.Read(Evaluation)!, signingKey, cancellationToken);
            if (FolderDigest.Of(BaseModel).Digest != baseModel.Digest)
                throw new PackageException($"{BaseModel}: the base model changed while the package was written; nothing is published");
            return result;
        }
        finally
        {
            if (Directory.Exists(snapshot)) Directory.Delete(snapshot, recursive: true);
        }
    }

    private PackageResult Write(string outputDirectory, string adapter, JudgedWeights judged, System.Security.Cryptography.ECDsa? signingKey,
        CancellationToken cancellationToken)
    {
        string folder = Path.Combine(outputDirectory, Options.Name);
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        Directory.CreateDirectory(folder);

        string peftType = AdapterExport.Write(adapter, BaseModel, BaseModelName, folder);
        var adapterFiles = FolderDigest.Of(folder).Files;
        cancellationToken.ThrowIfCancellationRequested();
        if (Options.ExportMerged) MergedModel.Write(adapter, BaseModel, Path.Combine(folder, "merged"), "package.exportMerged");
        cancellationToken.ThrowIfCancellationRequested();

        var evaluateManifest = StageManifest.TryRead(Evaluation);
        var provenance = new Provenance
        {
            Name = Options.Name,
            Version = Options.Version,
            PeftType = peftType,
            BaseModelName = BaseModelName,
            Judged = judged,
            AdapterFiles = adapterFiles,
            PreparedData = PreparedData,
            Config = Config,
            SourceRevision = SourceRevision,
            Tools = Tools,
            Evaluation = Provenance.EvaluationSummary(ReadResults(Path.Combine(Evaluation, "results.json"))),
            Suites = (evaluateManifest?.Inputs ?? [])
                .Where(i => i.Name.StartsWith("evaluate.suites.", StringComparison.Ordinal))
                .ToDictionary(i => i.Name["evaluate.suites.".Length..], i => i.Sha256),
        };
        AtomicFile.WriteAllText(Path.Combine(folder, Provenance.FileName), SortedJson.Serialize(provenance.ToJson()));
        var adapterConfig = AdapterFolder.Describe(folder).Config;
        AtomicFile.WriteAllText(Path.Combine(folder, "README.md"), AdapterModelCard.Write(provenance, adapterConfig, Options.ExportMerged));
        string statement = SortedJson.Serialize(InTotoStatement.Build(folder, provenance, judged, Options.BuilderId));
        string archive = PackageSeal.Write(folder, statement, signingKey, Options, outputDirectory, Epoch);

        string? nupkg = null;
        if (Options.Nupkg)
        {
            nupkg = Path.Combine(outputDirectory, Options.NupkgFileName);
            // Without merged/ (a whole model is no adapter reference); its SHA256SUMS lists just what it carries.
            var files = Sha256Sums.Files(folder).Where(f => !f.StartsWith("merged/", StringComparison.Ordinal)).ToList();
            string sums = Sha256Sums.Format(Sha256Sums.Parse(File.ReadAllText(Path.Combine(folder, Sha256Sums.FileName)), Sha256Sums.FileName)
                .Where(e => files.Contains(e.Path)));
            NugetPackage.Write(nupkg, folder, files, Options, new Dictionary<string, byte[]> { [Sha256Sums.FileName] = System.Text.Encoding.UTF8.GetBytes(sums) }, Epoch);
        }
        return new PackageResult(folder, archive, nupkg, peftType, Sha256Sums.Files(folder).Count);
    }
}
