using Forgetless.Data;
using Forgetless.Model.Tokenizers;
using Forgetless.Runs;

namespace Forgetless.Stages.Prepare;

/// <summary>
/// The prepare stage: task and replay data in, tokenized and packed train/validation Parquet plus stats.json out.
/// A thin composition of <see cref="PrepareEngine"/>; every file it reads is declared so that changing a single
/// input row, an evaluation suite, the options or the tokenizer makes the run store rerun it.
/// </summary>
public sealed class PrepareStage(
    PrepareOptions options,
    string tokenizerDirectory,
    Func<string, ITokenizer> tokenizerFactory,
    string? baseDirectory = null,
    Func<IReplayTextGenerator>? replayGeneratorFactory = null,
    string? modelDirectory = null) : IStage
{
    private readonly string baseDirectory = Path.GetFullPath(baseDirectory ?? Directory.GetCurrentDirectory());

    public string Name => "prepare";

    public void DeclareInputs(StageInputs inputs)
    {
        inputs.Value("prepare.options", options.ToJson());
        inputs.Directory("tokenizer", tokenizerDirectory);
        Declare(inputs, "prepare.taskSources", options.TaskSources);
        Declare(inputs, "prepare.replaySources", options.ReplaySources);
        for (var i = 0; i < options.Decontaminate.Suites.Count; i++)
            inputs.File($"prepare.decontaminate.suites[{i}]", Resolve(options.Decontaminate.Suites[i]));
        if (options.GeneratedReplay.Enabled && modelDirectory is not null)
            inputs.Directory("prepare.generatedReplay.model", modelDirectory);
    }

    private void Declare(StageInputs inputs, string key, List<DataSourceOptions> sources)
    {
        for (var i = 0; i < sources.Count; i++)
        {
            var path = Resolve(sources[i].Path);
            var prepared = sources[i].Format == SourceFormat.PreparedDataset || (sources[i].Format == SourceFormat.Auto && Directory.Exists(path));
            inputs.File($"{key}[{i}]", prepared ? PreparedDataset.TrainFile(path) : path);
        }
    }

    public async Task<StageOutcome> RunAsync(StageRun run, CancellationToken cancellationToken)
    {
        var errors = options.Validate();
        if (errors.Count > 0)
            throw new Configuration.ConfigException(string.Join(Environment.NewLine, errors.Select(e => "prepare." + e)));
        var tokenizer = tokenizerFactory(tokenizerDirectory);
        var engine = new PrepareEngine(options, tokenizer, HashTokenizer(tokenizerDirectory),
            options.GeneratedReplay.Enabled ? replayGeneratorFactory?.Invoke() : null, run.Logger);
        var stats = await Task.Run(() => engine.RunAsync(baseDirectory, run.OutputDirectory, run.WorkDirectory, cancellationToken), cancellationToken);
        return StageOutcome.Done(new Dictionary<string, object?>
        {
            ["trainTokens"] = stats.Train.Tokens,
            ["trainSequences"] = stats.Train.Sequences,
            ["validationTokens"] = stats.Validation.Tokens,
            ["replayShare"] = stats.AchievedReplayShare,
            ["skipped"] = stats.Filtered.Skipped,
            ["dropped"] = stats.Filtered.Dropped,
            ["truncated"] = stats.Filtered.Truncated,
            ["deduplicated"] = stats.Filtered.Deduplicated,
            ["decontaminated"] = stats.Filtered.Decontaminated,
        });
    }

    private string Resolve(string path) => Path.GetFullPath(path, baseDirectory);

    /// <summary>The tokenizer folder's digest (<see cref="FileHashes.DirectoryDigest"/>), written into the Parquet metadata.</summary>
    internal static string HashTokenizer(string directory) => Directory.Exists(directory)
        ? FileHashes.DigestOf(directory)
        : throw new DirectoryNotFoundException($"Tokenizer folder '{directory}' does not exist.");
}
