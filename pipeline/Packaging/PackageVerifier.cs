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

/// <summary>A package folder ready to read: the folder itself, or an archive extracted to a temp folder (removed on dispose).</summary>
public sealed class OpenedPackage : IDisposable
{
    private readonly string? temp;

    private OpenedPackage(string folder, string? temp)
    {
        Folder = folder;
        this.temp = temp;
    }

    public string Folder { get; }

    /// <summary>Opens a package folder, or extracts a .tar.gz/.zip/.nupkg safely and finds the package folder inside.</summary>
    public static OpenedPackage Open(string path)
    {
        if (Directory.Exists(path)) return new OpenedPackage(Path.GetFullPath(path), null);
        if (!File.Exists(path)) throw new PackageException($"{path}: no such package folder or archive");
        if (!SafeExtraction.IsArchive(path)) throw new PackageException($"{path}: not a package folder or a .tar.gz/.zip/.nupkg archive");
        string temp = Path.Combine(Path.GetTempPath(), "forgetless-verify-" + Guid.NewGuid().ToString("N")[..12]);
        try
        {
            SafeExtraction.Extract(path, temp);
            return new OpenedPackage(FindPackageFolder(temp, path), temp);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    private static string FindPackageFolder(string extracted, string archive)
    {
        if (File.Exists(Path.Combine(extracted, Sha256Sums.FileName))) return extracted;
        var dirs = Directory.GetDirectories(extracted);
        if (dirs.Length == 1 && File.Exists(Path.Combine(dirs[0], Sha256Sums.FileName))) return dirs[0];
        string nupkgContent = Path.Combine(extracted, "contentFiles", "any", "any", "adapters");
        if (Directory.Exists(nupkgContent) && Directory.GetDirectories(nupkgContent) is [var only] && File.Exists(Path.Combine(only, Sha256Sums.FileName)))
            return only;
        throw new PackageException($"{archive}: no package folder with {Sha256Sums.FileName} inside");
    }

    public void Dispose()
    {
        if (temp is not null) TryDelete(temp);
    }

    private static void TryDelete(string path)
    {
        try { if (Directory.Exists(path)) Directory.Delete(path, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}

/// <summary>
/// <c>forgetless verify</c>: checks a package's checksums, its recorded gate verdicts, that its adapter fits a
/// base model (loaded and applied through <see cref="AdapterFolder.Apply"/>; errors name the tensor and shapes),
/// and optionally re-runs the gates with the evaluation configuration stored in its manifest.
/// </summary>
public static class PackageVerifier
{
    /// <param name="baseModel">Base model folder to check the adapter against; null skips the shape check.</param>
    /// <param name="rerunGates">Score the suites again on base and base + adapter and compare the verdicts.</param>
    /// <param name="suiteDirectory">Folder the stored suite paths are relative to (the pipeline file's folder).</param>
    public static VerifyReport Verify(string package, string? baseModel = null, bool rerunGates = false,
        string? suiteDirectory = null, Microsoft.Extensions.Logging.ILogger? logger = null, CancellationToken cancellationToken = default)
    {
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
        if (manifest["format"]?.ToString() != Provenance.Format)
            problems.Add($"{Provenance.FileName}: format '{manifest["format"]}', expected '{Provenance.Format}'");

        problems.AddRange(RecheckVerdicts(manifest));

        if (baseModel is not null)
        {
            CheckBaseFiles(manifest, baseModel, notes);
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
            notes.Add("adapter shapes not checked (pass --base DIR)");
        }

        if (rerunGates)
        {
            if (baseModel is null) problems.Add("--rerun-gates needs --base DIR");
            else if (problems.Count == 0) problems.AddRange(RerunGates(manifest, folder, baseModel, suiteDirectory ?? Directory.GetCurrentDirectory(), notes, logger, cancellationToken));
        }
        return new VerifyReport(package, problems, notes);
    }

    /// <summary>The recorded verdicts must be a pass, and consistent: overall passed = every gate passed.</summary>
    public static IReadOnlyList<string> RecheckVerdicts(JsonObject manifest)
    {
        var problems = new List<string>();
        var evaluation = manifest["evaluation"] as JsonObject;
        if (evaluation?["gates"] is not JsonArray gates || evaluation["passed"] is not JsonValue passedNode || !passedNode.TryGetValue<bool>(out bool passed))
            return [$"{Provenance.FileName}: no recorded evaluation verdicts"];
        bool all = true;
        foreach (var gate in gates)
        {
            bool ok = gate?["passed"]?.GetValue<bool>() == true;
            all &= ok;
            if (!ok) problems.Add($"gate '{gate?["name"]}' is recorded as failed: {gate?["message"]}");
        }
        if (passed != all) problems.Add($"{Provenance.FileName}: evaluation.passed = {passed} contradicts the gate verdicts");
        else if (!passed) problems.Add("the package's evaluation did not pass its release gates");
        return problems;
    }

    private static void CheckBaseFiles(JsonObject manifest, string baseModel, List<string> notes)
    {
        if (manifest["base_model"]?["files"] is not JsonArray files) return;
        foreach (var file in files)
        {
            string path = file?["path"]?.ToString() ?? "";
            string full = Path.Combine(baseModel, path);
            if (!File.Exists(full)) { notes.Add($"base model differs from the packaged one: {path} is missing"); return; }
            if (FileHashes.Compute(full) != file?["sha256"]?.ToString()) { notes.Add($"base model differs from the packaged one: {path} has other bytes"); return; }
        }
        notes.Add("base model: every file matches the one recorded in the manifest");
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

/// <summary>
/// Byte-for-byte comparison of two packages or two package stage outputs (folders or archives), for reproducible
/// rebuilds. Stage manifests (<c>forgetless.stage.json</c>, which hold timings) are left out.
/// </summary>
public static class PackageComparison
{
    public sealed record Difference(string Path, string Reason);

    public static IReadOnlyList<Difference> Compare(string a, string b)
    {
        if (File.Exists(a) && File.Exists(b))
        {
            if (FileHashes.Compute(a) == FileHashes.Compute(b)) return [];
            using var pa = OpenedPackage.Open(a);
            using var pb = OpenedPackage.Open(b);
            var inner = CompareFolders(pa.Folder, pb.Folder);
            return inner.Count > 0 ? inner : [new Difference(Path.GetFileName(a), "the archives differ although every file inside is equal (archive metadata)")];
        }
        if (Directory.Exists(a) && Directory.Exists(b)) return CompareFolders(a, b);
        throw new PackageException($"compare: give two folders or two archives ({a}, {b})");
    }

    private static List<Difference> CompareFolders(string a, string b)
    {
        var fa = Sha256Sums.Files(a).Where(Keep).ToList();
        var fb = Sha256Sums.Files(b).Where(Keep).ToHashSet(StringComparer.Ordinal);
        var differences = new List<Difference>();
        foreach (var f in fa)
        {
            if (!fb.Remove(f)) { differences.Add(new Difference(f, $"only in {a}")); continue; }
            string ha = FileHashes.Compute(Path.Combine(a, f)), hb = FileHashes.Compute(Path.Combine(b, f));
            if (ha != hb) differences.Add(new Difference(f, $"different bytes ({ha[..12]}… vs {hb[..12]}…)"));
        }
        differences.AddRange(fb.Select(f => new Difference(f, $"only in {b}")));
        return differences.OrderBy(d => d.Path, StringComparer.Ordinal).ToList();
    }

    private static bool Keep(string relative) => Path.GetFileName(relative) != StageManifest.FileName;
}
