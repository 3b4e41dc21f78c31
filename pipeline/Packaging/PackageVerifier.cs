using System.Text.Json;
using System.Text.Json.Nodes;
using Forgetless.Evaluation;
using Forgetless.Model;
using Forgetless.Peft;
using Forgetless.Runs;

namespace Forgetless.Packaging;

/// <summary>What <see cref="PackageVerifier"/> found: problems fail verification, notes are informational.</summary>
public sealed record VerifyReport(string Package, IReadOnlyList<string> Problems, IReadOnlyList<string> Notes)
{
    public bool Ok => Problems.Count == 0;
}

/// <summary>
/// <c>forgetless verify</c>: checks that a package is what its provenance says, in this order — every checksum; the
/// recorded gate verdicts against their own numbers (<see cref="RecordedVerdicts"/>); the adapter files against the
/// digests the manifest binds to the verdicts; the in-toto statement against every file; the DSSE signature with a
/// public key (<c>--key</c>: an unsigned or otherwise signed package fails); with a base model, that it is the one the
/// gates judged and that the adapter fits it (loaded through <see cref="AdapterFolder.Apply"/>; errors name the tensor
/// and shapes); and optionally the gates re-run with the evaluation configuration stored in the manifest.
/// </summary>
public static class PackageVerifier
{
    /// <param name="baseModel">Base model folder to check the adapter against; null skips the shape check.</param>
    /// <param name="rerunGates">Score the suites again on base and base + adapter and compare the verdicts.</param>
    /// <param name="suiteDirectory">Folder the stored suite paths are relative to (the pipeline file's folder).</param>
    /// <param name="publicKey">PEM file of the public key the package must be signed with; null: a signature is not required.</param>
    public static VerifyReport Verify(string package, string? baseModel = null, bool rerunGates = false,
        string? suiteDirectory = null, Microsoft.Extensions.Logging.ILogger? logger = null, CancellationToken cancellationToken = default,
        string? publicKey = null)
    {
        using var trusted = publicKey is null ? null : SigningKeys.LoadPublic(publicKey);
        using var opened = OpenedPackage.Open(package);
        string folder = opened.Folder;
        var problems = new List<string>();
        var notes = new List<string>();

        var checksumProblems = Sha256Sums.Check(folder);
        problems.AddRange(checksumProblems);
        if (checksumProblems.Count > 0) return new VerifyReport(package, problems, notes); // tampered: nothing else is trustworthy
        notes.Add($"checksums: {Sha256Sums.Parse(File.ReadAllText(Path.Combine(folder, Sha256Sums.FileName)), Sha256Sums.FileName).Count} files match {Sha256Sums.FileName}");

        JsonObject manifest;
        string manifestPath = Path.Combine(folder, Provenance.FileName);
        try
        {
            manifest = JsonNode.Parse(File.ReadAllText(manifestPath)) as JsonObject ?? throw new PackageException($"{Provenance.FileName}: expected a JSON object");
        }
        catch (Exception e) when (e is JsonException or FileNotFoundException)
        {
            problems.Add($"{Provenance.FileName}: missing or not valid JSON ({e.Message})");
            return new VerifyReport(package, problems, notes);
        }
        if (manifest["format"]?.ToString() == AdapterSetPackager.Format)
        {
            AdapterSetVerifier.Verify(opened, manifest, baseModel, trusted, publicKey, problems, notes);
            if (rerunGates) problems.Add("--rerun-gates: an adapter-set package's gates are continual gates; rerun them with `forgetless continual`");
            return new VerifyReport(package, problems, notes);
        }
        if (manifest["format"]?.ToString() != Provenance.Format)
        {
            problems.Add($"{Provenance.FileName}: format '{manifest["format"]}', expected '{Provenance.Format}' (an older package binds no verdict to its weights; repackage it)");
            return new VerifyReport(package, problems, notes);
        }

        problems.AddRange(RecheckVerdicts(manifest));
        problems.AddRange(CheckWeights(manifest, folder, notes));
        problems.AddRange(CheckStatement(opened, trusted, publicKey, notes));

        if (baseModel is not null)
        {
            problems.AddRange(CheckBaseFiles(manifest, baseModel, notes));
            try
            {
                using var model = ModelFolder.LoadModel(baseModel);
                string type = AdapterFolder.Apply(model, folder);
                notes.Add($"adapter: {type} applies to {baseModel} (every tensor name and shape fits)");
            }
            catch (Exception e) when (e is InvalidOperationException or UserInputException or InvalidDataException or FormatException or NotSupportedException or FileNotFoundException)
            {
                problems.Add($"adapter does not fit the base model {baseModel}: {e.Message}");
            }
            if (Directory.Exists(Path.Combine(folder, "merged")))
            {
                try
                {
                    using var merged = ModelFolder.LoadModel(Path.Combine(folder, "merged"));
                    notes.Add("merged/: loads as a model folder");
                }
                catch (Exception e) when (e is InvalidDataException or FileNotFoundException or FormatException)
                {
                    problems.Add($"merged/: does not load ({e.Message})");
                }
            }
        }
        else
        {
            notes.Add("adapter shapes and base model not checked (pass --base DIR)");
        }

        if (rerunGates)
        {
            if (baseModel is null) problems.Add("--rerun-gates needs --base DIR");
            else if (problems.Count == 0) problems.AddRange(RerunGates(manifest, folder, baseModel, suiteDirectory ?? Directory.GetCurrentDirectory(), notes, logger, cancellationToken));
        }
        return new VerifyReport(package, problems, notes);
    }

    /// <summary>The recorded verdicts must be a pass, consistent with their numbers and with the overall <c>passed</c>.</summary>
    public static IReadOnlyList<string> RecheckVerdicts(JsonObject manifest) => RecordedVerdicts.Check(manifest["evaluation"], Provenance.FileName);

    /// <summary>
    /// The packaged adapter files are the ones the manifest records, every adapter file is recorded, and the digests the
    /// verdicts are bound to (<c>evaluation.weights</c>) are the evaluated adapter's and the base model's.
    /// </summary>
    private static IEnumerable<string> CheckWeights(JsonObject manifest, string folder, List<string> notes)
    {
        var problems = new List<string>();
        FolderDigest evaluated, baseModel;
        List<FileDigest> packaged;
        try
        {
            evaluated = FolderDigest.FromJson(manifest["adapter"]?["evaluated"], $"{Provenance.FileName} adapter.evaluated");
            baseModel = FolderDigest.FromJson(manifest["base_model"], $"{Provenance.FileName} base_model");
            packaged = (manifest["adapter"]?["files"] as JsonArray ?? throw new PackageException($"{Provenance.FileName}: adapter.files is missing"))
                .Select(f => FileDigest.FromJson(f, $"{Provenance.FileName} adapter.files")).ToList();
        }
        catch (PackageException e)
        {
            return [e.Message];
        }
        foreach (var file in packaged)
        {
            string full = Path.Combine(folder, file.Path);
            if (!File.Exists(full)) { problems.Add($"{file.Path}: recorded in {Provenance.FileName} but missing"); continue; }
            string actual = FileHashes.Compute(full);
            if (actual != file.Sha256)
                problems.Add($"{file.Path}: not the weights the package recorded and its gates judged (SHA-256 {actual[..12]}…, recorded {file.Sha256[..12]}…) — changed after packaging");
        }
        var recorded = packaged.Select(f => f.Path).ToHashSet(StringComparer.Ordinal);
        foreach (var file in Sha256Sums.Files(folder).Where(f => IsAdapterFile(f) && !recorded.Contains(f)))
            problems.Add($"{file}: an adapter file that {Provenance.FileName} does not record (added after packaging?)");

        var weights = manifest["evaluation"]?["weights"];
        if (weights?["adapter"]?.ToString() != evaluated.Digest || weights?["base_model"]?.ToString() != baseModel.Digest)
            problems.Add($"{Provenance.FileName}: evaluation.weights does not name the evaluated adapter {evaluated.Short} and base model {baseModel.Short}: the verdicts are not bound to these weights");
        if (problems.Count == 0)
        {
            notes.Add($"weights: the adapter files are the ones recorded; the gates judged adapter {evaluated.Short} on base model {baseModel.Short}");
            foreach (var file in packaged.Where(p => evaluated.Files.Any(e => e.Path == p.Path && e.Sha256 == p.Sha256)))
                notes.Add($"weights: {file.Path} is byte-identical to the evaluated adapter's");
        }
        return problems;
    }

    /// <summary>Files of the adapter itself: everything but the card, the provenance, the checksums and merged/.</summary>
    private static bool IsAdapterFile(string relative) =>
        relative is not ("README.md" or Provenance.FileName) && InTotoStatement.IsSubject(relative) && !relative.StartsWith("merged/", StringComparison.Ordinal);

    /// <summary>The in-toto statement names exactly these files; a signature, when present or required, holds.</summary>
    internal static IEnumerable<string> CheckStatement(OpenedPackage package, System.Security.Cryptography.ECDsa? trusted, string? publicKey, List<string> notes)
    {
        string folder = package.Folder;
        string statementPath = Path.Combine(folder, InTotoStatement.FileName);
        if (!File.Exists(statementPath)) return [$"{InTotoStatement.FileName} is missing"];
        byte[] statement = File.ReadAllBytes(statementPath);
        var problems = InTotoStatement.Check(folder, statement, InTotoStatement.FileName, package.WithoutMerged).ToList();
        if (problems.Count == 0) notes.Add($"statement: {InTotoStatement.FileName} (in-toto, SLSA provenance v1) names every file with its SHA-256");

        string envelopePath = Path.Combine(folder, InTotoStatement.EnvelopeFileName);
        if (!File.Exists(envelopePath))
        {
            if (trusted is not null)
                problems.Add($"the package is not signed (no {InTotoStatement.EnvelopeFileName}), but --key {publicKey} requires a signature");
            return problems;
        }
        JsonObject envelope;
        try
        {
            envelope = JsonNode.Parse(File.ReadAllText(envelopePath)) as JsonObject ?? throw new JsonException("expected a JSON object");
        }
        catch (JsonException e)
        {
            return [.. problems, $"{InTotoStatement.EnvelopeFileName}: not a DSSE envelope ({e.Message})"];
        }
        if (envelope["payloadType"]?.ToString() != Dsse.InTotoPayloadType)
            problems.Add($"{InTotoStatement.EnvelopeFileName}: payloadType '{envelope["payloadType"]}', expected {Dsse.InTotoPayloadType}");
        if (Dsse.Payload(envelope) is not { } payload || !payload.AsSpan().SequenceEqual(statement))
            problems.Add($"the signed statement in {InTotoStatement.EnvelopeFileName} differs from {InTotoStatement.FileName}: one of them was changed after signing");
        string keyIds = string.Join(", ", (envelope["signatures"] as JsonArray ?? []).Select(s => s?["keyid"]?.ToString()).OfType<string>().Select(k => k[..Math.Min(16, k.Length)] + "…"));
        if (trusted is null)
        {
            notes.Add($"signed by key {keyIds} (not checked: pass --key PUBLIC_KEY.pem to check the signature)");
        }
        else if (Dsse.Verify(envelope, trusted) is { } why)
        {
            problems.Add($"signature: does not verify with {publicKey} ({why}): the package was signed with another key, or changed after signing");
        }
        else
        {
            notes.Add($"signature: valid, by key {SigningKeys.KeyId(trusted)[..16]}… ({publicKey})");
        }
        return problems;
    }

    /// <summary>The gates' verdicts hold for the base model they were judged on: every recorded file must match.</summary>
    internal static IEnumerable<string> CheckBaseFiles(JsonObject manifest, string baseModel, List<string> notes)
    {
        if (manifest["base_model"]?["files"] is not JsonArray files) return [$"{Provenance.FileName}: base_model.files is missing"];
        foreach (var file in files)
        {
            string path = file?["path"]?.ToString() ?? "";
            string full = Path.Combine(baseModel, path);
            if (!File.Exists(full)) return [$"the base model {baseModel} is not the one the gates judged: {path} is missing"];
            if (FileHashes.Compute(full) != file?["sha256"]?.ToString()) return [$"the base model {baseModel} is not the one the gates judged: {path} has other bytes"];
        }
        notes.Add("base model: every file matches the one the gates judged");
        return [];
    }

    private static IEnumerable<string> RerunGates(JsonObject manifest, string folder, string baseModel, string suiteDirectory,
        List<string> notes, Microsoft.Extensions.Logging.ILogger? logger, CancellationToken cancellationToken)
    {
        var optionsNode = manifest["config"]?["sections"]?["evaluate"] ?? manifest["evaluation"]?["options"];
        if (optionsNode is null) return ["--rerun-gates: the manifest stores no evaluation configuration"];
        var options = optionsNode.Deserialize<EvaluateOptions>(EvaluateOptions.Json)!;
        var problems = new List<string>();
        if (manifest["evaluation_suites"] is JsonObject suites)
            foreach (var suite in options.Suites)
                if (suites[suite.Name]?.ToString() is { } recordedHash && File.Exists(Path.GetFullPath(suite.Path, suiteDirectory))
                    && FileHashes.Compute(Path.GetFullPath(suite.Path, suiteDirectory)) != recordedHash)
                    notes.Add($"suite '{suite.Name}': {suite.Path} differs from the file the package was evaluated on");
        int seed = manifest["config"]?["sections"]?["run"]?["seed"]?.GetValue<int>() ?? 0;
        var evaluation = new ForgettingEvaluation
        {
            Options = options,
            BaseDirectory = suiteDirectory,
            LoadBase = () =>
            {
                var loaded = ModelFolder.Load(baseModel);
                if (loaded.Tokenizer is null)
                {
                    loaded.Model.Dispose();
                    throw new UserInputException($"{baseModel}: no tokenizer files; re-running the gates needs one");
                }
                return (loaded.Model, loaded.Tokenizer);
            },
            ApplyCandidate = model => AdapterFolder.Apply(model, folder),
            BaseFingerprint = "verify",
            CacheDirectory = null,
            Seed = seed,
            Logger = logger,
        };
        var result = evaluation.Run(cancellationToken);
        var recorded = (manifest["evaluation"]?["gates"] as JsonArray ?? []).ToDictionary(g => g?["name"]?.ToString() ?? "", g => g?["passed"]?.GetValue<bool>() == true);
        foreach (var verdict in result.Verdicts)
        {
            if (!verdict.Passed) problems.Add($"re-run gate '{verdict.Name}' failed: {verdict.Message}");
            if (recorded.TryGetValue(verdict.Name, out bool was) && was != verdict.Passed)
                problems.Add($"re-run gate '{verdict.Name}': recorded {(was ? "passed" : "failed")}, now {(verdict.Passed ? "passed" : "failed")}");
        }
        notes.Add($"gates re-run: {result.Verdicts.Count(v => v.Passed)} of {result.Verdicts.Count} passed");
        return problems;
    }
}
