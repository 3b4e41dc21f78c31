using Forgetless.Data;
using Forgetless.Model.Tokenizers;
using Forgetless.Runs;

namespace Forgetless.Stages.Prepare;

/// <summary>
/// The prepare stage: task and replay data in, tokenized and packed train/validation Parquet plus stats.json out.
/// A thin composition of <see cref="PrepareEngine"/>; every file it reads is declared so that changing a single
/// input row, an evaluation suite, the options or the tokenizer makes the run store rerun it.
/// </summary>
/// <param name="tokenizerFactory">Loads the tokenizer from the base model folder (a seam for tests).</param>
/// <param name="replayGeneratorFactory">Makes the generator of generated replay (default: the base model samples).</param>
public sealed class PrepareStage(
    StageContext context,
    PrepareOptions options,
    Func<string, ITokenizer>? tokenizerFactory = null,
    Func<IReplayTextGenerator>? replayGeneratorFactory = null) : IStage
{
    private string BaseDirectory => context.BaseDirectory;
    /// <summary>The base model folder: its tokenizer tokenizes the data.</summary>
    private string TokenizerDirectory => context.BaseModel;

    public string Name => "prepare";

    public void DeclareInputs(StageInputs inputs)
    {
        inputs.Value("config.prepare", options.ToJson());
        inputs.Directory("run.baseModel", TokenizerDirectory);
        Declare(inputs, "prepare.taskSources", options.TaskSources);
        Declare(inputs, "prepare.replaySources", options.ReplaySources);
        for (var i = 0; i < options.Decontaminate.Suites.Count; i++)
            inputs.File($"prepare.decontaminate.suites[{i}]", Resolve(options.Decontaminate.Suites[i]));
        // Generated replay samples the base model, whose folder is already an input (it holds the tokenizer).
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
        RequireSequencesFitTheModel();
        var tokenizer = (tokenizerFactory ?? TokenizerLoader.Load)(TokenizerDirectory);
        var engine = new PrepareEngine(options, tokenizer, HashTokenizer(TokenizerDirectory),
            options.GeneratedReplay.Enabled ? (replayGeneratorFactory ?? (() => new ModelReplayGenerator(TokenizerDirectory, context.Placement(run.Logger))))() : null, run.Logger,
            options.TaskSources.Any(s => s.Chat != Data.Sources.ChatFormat.None) ? Data.ChatTemplates.ChatRenderer.Load(TokenizerDirectory) : null);
        var stats = await Task.Run(() => engine.RunAsync(BaseDirectory, run.OutputDirectory, run.WorkDirectory, cancellationToken), cancellationToken);
        return StageOutcome.Done(new Dictionary<string, object?>
        {
            ["train_tokens"] = stats.Train.Tokens,
            ["train_sequences"] = stats.Train.Sequences,
            ["validation_tokens"] = stats.Validation.Tokens,
            ["replay_share"] = stats.AchievedReplayShare,
            ["skipped"] = stats.Filtered.Skipped,
            ["dropped"] = stats.Filtered.Dropped,
            ["truncated"] = stats.Filtered.Truncated,
            ["deduplicated"] = stats.Filtered.Deduplicated,
            ["decontaminated"] = stats.Filtered.Decontaminated,
        });
    }

    private string Resolve(string path) => Path.GetFullPath(path, BaseDirectory);

    /// <summary>Sequences longer than the base model's positions could not be trained on (or only with positions it never learned).</summary>
    private void RequireSequencesFitTheModel()
    {
        string configPath = Path.Combine(TokenizerDirectory, Model.ModelFolder.ConfigFile);
        if (!File.Exists(configPath)) return; // a tokenizer-only folder: the finetune stage names the missing model
        int positions = Model.ModelConfig.FromJson(File.ReadAllText(configPath), configPath).MaxPositionEmbeddings;
        if (options.SeqLen > positions)
            throw new Configuration.ConfigException(
                $"prepare.seqLen = {options.SeqLen} is longer than the base model takes: {configPath} has max_position_embeddings {positions}; use {positions} or less");
    }

    /// <summary>The tokenizer folder's digest (<see cref="FileHashes.DirectoryDigest"/>), written into the Parquet metadata.</summary>
    internal static string HashTokenizer(string directory) => Directory.Exists(directory)
        ? FileHashes.DigestOf(directory)
        : throw new DirectoryNotFoundException($"Tokenizer folder '{directory}' does not exist.");
}
