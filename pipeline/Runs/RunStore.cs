using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Forgetless.Runs;

/// <summary>
/// Decides whether a stage is up to date and runs it so that its outputs appear only when it
/// completed. Layout under the run root:
/// <code>
///   &lt;stage&gt;/            completed outputs + forgetless.stage.json (the manifest)
///   .tmp/&lt;stage&gt;-*       outputs being written; never trusted, swept on the next run
///   .work/&lt;stage&gt;-&lt;fp&gt;  resumable scratch (checkpoints) for one fingerprint
///   .cache/             file-hash cache
/// </code>
/// </summary>
public sealed class RunStore
{
    private readonly FileHashes hashes;
    private readonly ILogger logger;

    public RunStore(string root, string toolVersion, ILogger logger)
    {
        Root = Path.GetFullPath(root);
        ToolVersion = toolVersion;
        this.logger = logger;
        hashes = new FileHashes(Path.Combine(Root, ".cache", "file-hashes.json"));
    }

    public string Root { get; }
    public string ToolVersion { get; }

    public string StageDirectory(string stage) => Path.Combine(Root, stage);

    public StageManifest? Manifest(string stage) => StageManifest.TryRead(StageDirectory(stage));

    public StageStatus Status(IStage stage)
    {
        var fingerprint = FingerprintOf(stage);
        var manifest = StageManifest.Read(StageDirectory(stage.Name), out string? damage);
        if (damage is not null)
            return new StageStatus(stage.Name, StageState.Stale, [$"its record {damage}; the stage reruns"], fingerprint);
        if (manifest is null)
            return new StageStatus(stage.Name, StageState.NeverRun, ["no completed run"], fingerprint);
        var reasons = StageStatus.Compare(manifest, fingerprint, ToolVersion, StageDirectory(stage.Name), hashes);
        hashes.Save();
        return new StageStatus(stage.Name, reasons.Count == 0 ? StageState.UpToDate : StageState.Stale, reasons, fingerprint);
    }

    /// <summary>Runs the stage unless it is up to date (or <paramref name="force"/> is set).</summary>
    public async Task<StageResult> RunAsync(IStage stage, bool force, CancellationToken cancellationToken)
    {
        var status = Status(stage);
        if (status.IsUpToDate && !force)
        {
            logger.LogInformation("{Stage}: up to date, skipped (use --force to rerun)", stage.Name);
            return new StageResult(stage.Name, Skipped: true, Manifest(stage.Name)!);
        }
        if (!status.IsUpToDate)
            logger.LogInformation("{Stage}: running — {Reasons}", stage.Name, string.Join("; ", status.Reasons));
        else
            logger.LogInformation("{Stage}: up to date, rerunning because --force was given", stage.Name);

        SweepAbandonedTemp(stage.Name);
        string temp = Path.Combine(Root, ".tmp", $"{stage.Name}-{Guid.NewGuid():N}");
        string work = Path.Combine(Root, ".work", $"{stage.Name}-{status.Fingerprint.Value[..16]}");
        Directory.CreateDirectory(temp);
        Directory.CreateDirectory(work);
        var run = new StageRun
        {
            StageName = stage.Name,
            OutputDirectory = temp,
            WorkDirectory = work,
            Fingerprint = status.Fingerprint.Value,
            Logger = logger,
            ResolveUpstream = StageDirectory,
        };

        var started = DateTimeOffset.UtcNow;
        var clock = Stopwatch.StartNew();
        StageOutcome outcome;
        try
        {
            outcome = await stage.RunAsync(run, cancellationToken);
        }
        catch
        {
            // Nothing half-written becomes trusted: the temp folder goes; the work folder stays for resume.
            TryDeleteDirectory(temp);
            throw;
        }

        var manifest = new StageManifest
        {
            Stage = stage.Name,
            Fingerprint = status.Fingerprint.Value,
            ToolVersion = ToolVersion,
            Inputs = status.Fingerprint.Inputs,
            Outputs = HashOutputs(temp),
            Started = started,
            Finished = started + clock.Elapsed,
            Metrics = outcome.Metrics,
            Failure = outcome.Failure,
        };
        manifest.Write(temp);
        Publish(stage.Name, temp);
        // Hash the published files once more through the cache so `status` right after is cheap.
        foreach (var output in manifest.Outputs) hashes.Sha256(Path.Combine(StageDirectory(stage.Name), output.Path));
        hashes.Save();
        TryDeleteDirectory(work);
        logger.LogInformation("{Stage}: completed in {Seconds:F1} s", stage.Name, manifest.DurationSeconds);
        return new StageResult(stage.Name, Skipped: false, manifest);
    }

    /// <summary>Removes a stage's outputs, temp folders and resumable state.</summary>
    public void Clean(string stage)
    {
        TryDeleteDirectory(StageDirectory(stage));
        SweepAbandonedTemp(stage);
        string work = Path.Combine(Root, ".work");
        if (Directory.Exists(work))
            foreach (var dir in Directory.EnumerateDirectories(work, stage + "-*")) TryDeleteDirectory(dir);
    }

    private static List<StageManifest.OutputRecord> HashOutputs(string directory) =>
        Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories)
            .Select(f => (Relative: Path.GetRelativePath(directory, f).Replace('\\', '/'), Full: f))
            .Where(f => f.Relative != StageManifest.FileName)
            .OrderBy(f => f.Relative, StringComparer.Ordinal)
            .Select(f => new StageManifest.OutputRecord(f.Relative, FileHashes.Compute(f.Full), new FileInfo(f.Full).Length))
            .ToList();

    /// <summary>
    /// Swaps the completed temp folder in. Both renames are atomic on one file system; between them
    /// the stage briefly has no folder, which reads as "never run", never as a wrong result.
    /// </summary>
    private void Publish(string stage, string temp)
    {
        string final = StageDirectory(stage);
        string? old = null;
        if (Directory.Exists(final))
        {
            old = Path.Combine(Root, ".tmp", $"{stage}-old-{Guid.NewGuid():N}");
            Directory.Move(final, old);
        }
        Directory.Move(temp, final);
        if (old is not null) TryDeleteDirectory(old);
    }

    private void SweepAbandonedTemp(string stage)
    {
        string tmp = Path.Combine(Root, ".tmp");
        if (!Directory.Exists(tmp)) return;
        foreach (var dir in Directory.EnumerateDirectories(tmp, stage + "-*"))
        {
            logger.LogDebug("Removing abandoned temp folder {Dir}", dir);
            TryDeleteDirectory(dir);
        }
    }

    private Fingerprint FingerprintOf(IStage stage)
    {
        var inputs = new StageInputs();
        stage.DeclareInputs(inputs);
        return Fingerprint.Of(stage.Name, inputs, ToolVersion, hashes, Manifest);
    }

    private static void TryDeleteDirectory(string path)
    {
        try { if (Directory.Exists(path)) Directory.Delete(path, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}

public sealed record StageResult(string Stage, bool Skipped, StageManifest Manifest);
