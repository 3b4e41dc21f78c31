using System.Text.Json;
using System.Text.Json.Nodes;
using Forgetless.Peft;
using Forgetless.Runs;

namespace Forgetless.Packaging;

/// <summary>What <see cref="AdapterPackager.Build"/> wrote.</summary>
public sealed record PackageResult(string Folder, string Archive, string? Nupkg, string PeftType, int Files);

/// <summary>
/// Builds a release package from an adapter folder that passed evaluation:
/// <code>
///   NAME/                       a PEFT adapter folder (PeftModel.from_pretrained(base, "NAME") loads it)
///     adapter_config.json
///     adapter_model.safetensors
///     README.md                 model card: method, data, base vs candidate with intervals, gates
///     forgetless.manifest.json  provenance: base model files, data, config, revision, tools, evaluation
///     merged/                   (package.exportMerged) the base with the adapter folded in, HF format
///     SHA256SUMS                sha256sum format over every other file
///   NAME-VERSION.tar.gz         (or .zip) the folder, deterministic
///   NAME.VERSION.nupkg          (package.nupkg) the folder minus merged/ as contentFiles
/// </code>
/// Same inputs give the same bytes: nothing written depends on the clock, the machine's paths or the user.
/// </summary>
public sealed class AdapterPackager
{
    public required PackageOptions Options { get; init; }
    public required string Adapter { get; init; }
    public required string BaseModel { get; init; }
    /// <summary>The evaluate stage's output folder (results.json and its stage manifest).</summary>
    public required string Evaluation { get; init; }
    public string? PreparedData { get; init; }
    public required JsonObject Config { get; init; }
    public required string SourceRevision { get; init; }
    public required IReadOnlyDictionary<string, string> Tools { get; init; }
    public long? Epoch { get; init; }

    public string BaseModelName => Options.BaseModelName.Length > 0
        ? Options.BaseModelName
        : Path.GetFileName(Path.GetFullPath(BaseModel).TrimEnd(Path.DirectorySeparatorChar));

    /// <summary>
    /// Null when the evaluation passed every gate; otherwise why the package must not be built
    /// (a failed gate recorded in the evaluate manifest or results.json, or no evaluation at all).
    /// </summary>
    public static string? RefusalReason(string evaluateOutput)
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

    /// <summary>Writes the package folder and archives into <paramref name="outputDirectory"/>.</summary>
    public PackageResult Build(string outputDirectory, CancellationToken cancellationToken = default)
    {
        if (RefusalReason(Evaluation) is { } refusal) throw new PackageException(refusal);
        string folder = Path.Combine(outputDirectory, Options.Name);
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        Directory.CreateDirectory(folder);

        string peftType = AdapterExport.Write(Adapter, BaseModel, BaseModelName, folder);
        cancellationToken.ThrowIfCancellationRequested();
        if (Options.ExportMerged) MergedModel.Write(Adapter, BaseModel, Path.Combine(folder, "merged"), "package.exportMerged");
        cancellationToken.ThrowIfCancellationRequested();

        var evaluateManifest = StageManifest.TryRead(Evaluation);
        var provenance = new Provenance
        {
            Name = Options.Name,
            Version = Options.Version,
            PeftType = peftType,
            BaseModelName = BaseModelName,
            BaseModelFiles = Sha256Sums.Files(BaseModel)
                .Select(f => (f, FileHashes.Compute(Path.Combine(BaseModel, f)), new FileInfo(Path.Combine(BaseModel, f)).Length)).ToList(),
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
        Sha256Sums.Write(folder);

        string archive = Path.Combine(outputDirectory, Options.ArchiveFileName);
        if (Options.Archive == ArchiveFormat.Zip) DeterministicArchive.WriteZip(folder, Options.Name, archive, Epoch);
        else DeterministicArchive.WriteTarGz(folder, Options.Name, archive, Epoch);

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
