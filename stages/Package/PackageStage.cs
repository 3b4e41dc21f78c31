using System.Text.Json.Nodes;
using Forgetless.Packaging;
using Forgetless.Runs;

namespace Forgetless.Stages.Package;

/// <summary>
/// The package stage, the end of a release: takes the candidate adapter that the evaluate stage judged
/// (an upstream stage's <c>adapter/</c>, or an explicit folder holding the same bytes), refuses when any release gate
/// failed or when the adapter is not the one judged, and writes a PEFT-compatible package folder with provenance, a deterministic archive and optionally a merged
/// model and a .nupkg (<see cref="AdapterPackager"/>). A refusal completes with <see cref="StageOutcome.Failure"/>
/// and publishes no package files, so the process exits 4 like the evaluate stage.
/// </summary>
/// <param name="candidateStage">Upstream stage whose <c>adapter/</c> is packaged; null when <paramref name="adapterFolder"/> is given.</param>
/// <param name="config">Every configuration section as canonical JSON (recorded in the provenance).</param>
public sealed class PackageStage(
    StageContext context,
    PackageOptions options,
    string baseModel,
    string? candidateStage,
    string? adapterFolder,
    bool usesPreparedData,
    JsonObject config,
    string toolVersion) : IStage
{
    public const string EvaluateStage = "evaluate";

    public string Name => "package";

    private readonly Lazy<string> revision = new(() => SourceRevision.Of(context.BaseDirectory));

    public void DeclareInputs(StageInputs inputs)
    {
        inputs.Value("config.package", options.ToJson());
        inputs.Value("package.signingKey", SigningKeyId());
        inputs.Value("config.all", config.ToJsonString());
        inputs.Value("env.sourceRevision", revision.Value);
        inputs.Value("env.archiveEpoch", DeterministicArchive.Epoch().ToString(System.Globalization.CultureInfo.InvariantCulture));
        inputs.Value("env.tools", typeof(TorchSharp.torch).Assembly.GetName().Version + " " + System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription);
        inputs.Directory("run.baseModel", baseModel);
        inputs.Upstream(EvaluateStage);
        if (adapterFolder is not null) inputs.Directory("package.adapter", adapterFolder);
        else if (candidateStage is not null) inputs.Upstream(candidateStage);
        if (usesPreparedData) inputs.Upstream("prepare");
    }

    /// <summary>
    /// What the package's signature depends on: the public key's id (the private key and where it lies are never
    /// recorded), so that another key re-signs. A key that cannot be read is named when the stage runs.
    /// </summary>
    private string SigningKeyId()
    {
        if (options.SigningKey.Length == 0) return "unsigned";
        try
        {
            using var key = SigningKeys.LoadPrivate(options.SigningKey, context.BaseDirectory);
            return "keyid " + SigningKeys.KeyId(key);
        }
        catch (UserInputException)
        {
            return "unreadable";
        }
    }

    public Task<StageOutcome> RunAsync(StageRun run, CancellationToken cancellationToken)
    {
        string evaluation = run.UpstreamOutput(EvaluateStage);
        if (AdapterPackager.GateRefusal(evaluation) is { } refusal)
            return Task.FromResult(Refused(refusal));

        string adapter = Candidate(run);
        var packager = new AdapterPackager
        {
            Options = options,
            Adapter = adapter,
            BaseModel = baseModel,
            Evaluation = evaluation,
            PreparedData = usesPreparedData ? StageManifest.TryRead(run.UpstreamOutput("prepare"))?.OutputsDigest() : null,
            Config = config,
            SourceRevision = revision.Value,
            Tools = Provenance.ToolVersions(toolVersion),
            KeyDirectory = context.BaseDirectory,
        };
        // The bypass of issue 20: any adapter folder packaged with this run's verdicts. Only the judged bytes pass.
        if (packager.RefusalReason() is { } notJudged)
            return Task.FromResult(Refused(notJudged));
        var result = packager.Build(run.OutputDirectory, cancellationToken);
        run.Logger.LogPackage(result, options);
        return Task.FromResult(StageOutcome.Done(new Dictionary<string, object?>
        {
            ["packaged"] = true,
            ["peft_type"] = result.PeftType,
            ["files"] = result.Files,
            ["archive"] = Path.GetFileName(result.Archive),
            ["archive_sha256"] = FileHashes.Compute(result.Archive),
            ["nupkg"] = result.Nupkg is null ? null : Path.GetFileName(result.Nupkg),
        }));
    }

    private static StageOutcome Refused(string reason) => new() { Failure = reason, Metrics = new Dictionary<string, object?> { ["packaged"] = false } };

    private string Candidate(StageRun run)
    {
        if (adapterFolder is not null)
        {
            if (!Directory.Exists(adapterFolder)) throw new UserInputException($"package: adapter folder {adapterFolder} not found");
            return adapterFolder;
        }
        if (candidateStage is null)
            throw new UserInputException("package: no candidate; set package.adapter (or evaluate.adapter) or enable the finetune stage");
        string adapter = Path.Combine(run.UpstreamOutput(candidateStage), "adapter");
        if (!Directory.Exists(adapter))
            throw new UserInputException($"package: the candidate is {candidateStage}'s adapter, but {adapter} does not exist; run `forgetless {candidateStage}` first");
        return adapter;
    }
}

internal static class PackageLog
{
    public static void LogPackage(this Microsoft.Extensions.Logging.ILogger logger, PackageResult result, PackageOptions options) =>
        Microsoft.Extensions.Logging.LoggerExtensions.LogInformation(logger,
            "package: {PeftType} adapter packaged as {Name}/ ({Files} files), {Archive}{Nupkg}",
            result.PeftType, options.Name, result.Files, Path.GetFileName(result.Archive), result.Nupkg is null ? "" : ", " + Path.GetFileName(result.Nupkg));
}
