using System.Globalization;
using Forgetless.Configuration;
using Forgetless.Model;
using Forgetless.Model.Devices;
using Forgetless.Model.Tokenizers;
using Forgetless.Runs;

namespace Forgetless.Stages;

/// <summary>
/// What every stage of one invocation shares: the loaded pipeline file, the <c>run</c> section, the paths it resolves
/// to, and how the base model is loaded. Stages take this instead of repeating their start-up.
/// <para>
/// Stage inputs are named one way everywhere (what <c>status</c> prints when one changes): a stage's own section is
/// <c>config.SECTION</c>; a file or folder is named by the key that names it (<c>run.baseModel</c>, <c>finetune.heldout</c>,
/// <c>evaluate.suites.NAME</c>, <c>prepare.taskSources[0]</c>); a fact of the machine or the checkout that can change a
/// result is <c>env.NAME</c>; another stage's outputs are <c>stage:NAME</c>.
/// </para>
/// </summary>
public sealed class StageContext(PipelineConfig config)
{
    public PipelineConfig Config { get; } = config;
    public RunOptions Run { get; } = config.Section<RunOptions>("run");

    /// <summary>The folder relative paths of the pipeline file resolve against.</summary>
    public string BaseDirectory => Config.BaseDirectory;
    public string BaseModel => Resolve(Run.BaseModel);
    public string RunRoot => Resolve(Run.Root);
    /// <summary>Caches shared by runs on one run root, or on several with run.cacheRoot (keys are content hashes): Fisher, teacher passes, base scores.</summary>
    public string CacheDirectory => Run.CacheRoot.Length > 0 ? Resolve(Run.CacheRoot) : Path.Combine(RunRoot, ".cache");
    public int Seed => Run.Seed;
    public DeviceChoice Device => Run.Device;

    /// <summary>This invocation's TensorBoard log of <paramref name="stage"/> when <c>run.tensorboard</c> is on, else null.</summary>
    public TensorboardLog? Tensorboard(string stage) => Run.Tensorboard ? TensorboardLog.Under(RunRoot, stage) : null;

    /// <summary>The run's device and compute type (<c>run.device</c>, <c>run.precision</c>), resolved once per stage.</summary>
    public Placement Placement(Microsoft.Extensions.Logging.ILogger logger) => DeviceSelector.Place(Run, logger);

    public string Resolve(string path) => Config.ResolvePath(path);

    public T Section<T>(string name) where T : class, new() => Config.Section<T>(name);

    /// <summary>A Hugging Face model folder with its tokenizer; a folder without tokenizer files is a named error.</summary>
    public static (CausalLM Model, ITokenizer Tokenizer) LoadWithTokenizer(string folder, string purpose, Placement? placement = null) =>
        WithTokenizer(ModelFolder.Load(folder, placement: placement), folder, purpose);

    /// <summary>A loaded model folder's model and tokenizer; a folder without tokenizer files is a named error.</summary>
    public static (CausalLM Model, ITokenizer Tokenizer) WithTokenizer(LoadedModel loaded, string folder, string purpose)
    {
        if (loaded.Tokenizer is null)
        {
            loaded.Model.Dispose();
            throw new UserInputException($"{folder}: the model folder has no tokenizer files; {purpose} needs one");
        }
        return (loaded.Model, loaded.Tokenizer);
    }

    /// <summary>The inputs of a stage that trains from the base model: its files, the seed and libtorch's thread count.</summary>
    public StageInputs DeclareTraining(StageInputs inputs) => inputs
        .Directory("run.baseModel", BaseModel)
        .Value("run.seed", Seed.ToString(CultureInfo.InvariantCulture))
        // Only when it is not f32, so that runs made before the key existed stay up to date.
        .ValueUnless("run.precision", Run.Precision.ToString().ToLowerInvariant(), "fp32")
        // Float sums, and so the exact bytes, depend on how libtorch splits work between threads.
        .Value("env.torchThreads", TorchSharp.torch.get_num_threads().ToString(CultureInfo.InvariantCulture));
}
