using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Forgetless.Configuration;
using Forgetless.FineTuning;
using Forgetless.Model;
using Forgetless.Runs;
using Forgetless.Stages;
using Microsoft.Extensions.Logging.Abstractions;

namespace Forgetless.Tests.FineTuning;

/// <summary>
/// A whole tiny pipeline in a temp folder: a 2-layer Llama (vocab 64, d 32, 4 heads, 2 kv heads) with a
/// letters byte-level tokenizer, a spelling task ("spell cat is" → " c a t"), replay text and held-out
/// text, and a forgetless.json whose prepare and finetune sections are sized so a run takes about a second.
/// </summary>
public sealed class FineTuneFixture : IDisposable
{
    private static readonly string[] Words =
        ["cat", "dog", "sun", "tree", "river", "stone", "light", "north", "maple", "orbit", "quiet", "sand", "tide", "wolf", "ember", "cloud",
         "grass", "field", "house", "bird", "lake", "moon", "road", "wind"];

    public string Root { get; } = Directory.CreateTempSubdirectory("forgetless-finetune-").FullName;
    public string ModelDirectory => Path.Combine(Root, "model");
    public string ConfigPath => Path.Combine(Root, "forgetless.json");
    public string RunRoot => Path.Combine(Root, "runs");
    public string OutputDirectory => Path.Combine(RunRoot, "finetune");
    public string AdapterDirectory => Path.Combine(OutputDirectory, "adapter");

    public FineTuneFixture(int seed = 7)
    {
        WriteModel(ModelDirectory, seed);
        var random = new Random(seed);
        var task = new StringBuilder();
        for (int i = 0; i < 160; i++)
        {
            var word = Words[random.Next(Words.Length)] + Words[random.Next(Words.Length)][..2];
            task.Append(JsonSerializer.Serialize(new { prompt = $"spell {word} is", response = " " + string.Join(' ', word.ToCharArray()) })).Append('\n');
        }
        File.WriteAllText(Path.Combine(Root, "task.jsonl"), task.ToString());
        File.WriteAllText(Path.Combine(Root, "replay.txt"), Sentences(random, 200));
        File.WriteAllText(Path.Combine(Root, "heldout.txt"), Sentences(random, 60));
        WriteConfig(new JsonObject());
    }

    private static string Sentences(Random random, int lines) =>
        string.Concat(Enumerable.Range(0, lines).Select(_ => string.Join(' ', Enumerable.Range(0, 6 + random.Next(6)).Select(_ => Words[random.Next(Words.Length)])) + "\n"));

    public static ModelConfig TinyConfig => ModelConfig.Llama(vocabSize: 64, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 128);

    /// <summary>
    /// A tiny model folder: random weights for <paramref name="seed"/> and a letters + space + newline byte-level tokenizer;
    /// <paramref name="shape"/> (vocabulary 64) replaces <see cref="TinyConfig"/>.
    /// </summary>
    public static void WriteModel(string directory, int seed, ModelConfig? shape = null)
    {
        Directory.CreateDirectory(directory);
        using (var model = ModelFactory.Create((shape ?? TinyConfig) with { BosTokenId = 28, EosTokenIds = [28], PadTokenId = 28 }, seed))
            ModelFolder.Save(model, directory);
        var vocab = new Dictionary<string, int>();
        for (char c = 'a'; c <= 'z'; c++) vocab[c.ToString()] = vocab.Count;
        vocab["Ġ"] = vocab.Count;
        vocab["Ċ"] = vocab.Count;
        vocab["<|endoftext|>"] = vocab.Count;
        // Fill the model's 64 ids so that anything the model generates decodes.
        foreach (var c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".Take(64 - vocab.Count)) vocab[c.ToString()] = vocab.Count;
        File.WriteAllText(Path.Combine(directory, "vocab.json"), JsonSerializer.Serialize(vocab));
        File.WriteAllText(Path.Combine(directory, "merges.txt"), "#version: 0.2\n");
        File.WriteAllText(Path.Combine(directory, "tokenizer_config.json"),
            """{"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}""");
    }

    /// <summary>Writes forgetless.json; <paramref name="finetune"/> entries override the small defaults of the finetune section.</summary>
    public void WriteConfig(JsonObject finetune)
    {
        var section = new JsonObject
        {
            ["method"] = "lora",
            ["steps"] = 12,
            ["tokensPerBatch"] = 96,
            ["learningRate"] = 0.02,
            ["warmupSteps"] = 2,
            ["logEvery"] = 2,
            ["evalEvery"] = 4,
            ["checkpointEvery"] = 3,
            ["validationSequences"] = 8,
            ["heldout"] = "heldout.txt",
            ["heldoutWindows"] = 2,
            ["heldoutWindowLength"] = 32,
            ["lora"] = new JsonObject { ["r"] = 4, ["alpha"] = 8, ["targetModules"] = new JsonArray("q_proj", "v_proj") },
        };
        foreach (var (key, value) in finetune) section[key] = value?.DeepClone();
        var config = new JsonObject
        {
            ["run"] = new JsonObject { ["root"] = "runs", ["baseModel"] = "model", ["seed"] = 11, ["device"] = "cpu" },
            ["prepare"] = new JsonObject
            {
                ["taskSources"] = new JsonArray(new JsonObject { ["path"] = "task.jsonl", ["name"] = "spell", ["promptField"] = "prompt", ["responseField"] = "response" }),
                ["replaySources"] = new JsonArray(new JsonObject { ["path"] = "replay.txt", ["name"] = "general" }),
                ["replayShare"] = 0.25,
                ["seqLen"] = 32,
                ["validationFraction"] = 0.15,
                ["decontaminate"] = new JsonObject { ["suites"] = new JsonArray() },
            },
            ["finetune"] = section,
        };
        File.WriteAllText(ConfigPath, config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    public PipelineConfig LoadConfig(params string[] overrides) =>
        PipelineConfig.Load(ConfigPath, StageRegistry.Sections, PipelineConfig.ParseOverrides(overrides), useEnvironment: false);

    /// <summary>prepare + finetune through the run store, in this process; returns summary.json.</summary>
    public async Task<JsonObject> RunAsync(CancellationToken cancellationToken = default, string runRoot = "runs", params string[] overrides)
    {
        var config = LoadConfig(["run.root=" + runRoot, .. overrides]);
        var run = config.Section<RunOptions>("run");
        var stages = StageRegistry.Build(new StageContext(config));
        var store = new RunStore(config.ResolvePath(run.Root), "test", NullLogger.Instance);
        foreach (var stage in PipelineStatus.Plan(store, stages, "finetune")) await store.RunAsync(stage, force: false, cancellationToken);
        return Summary(Path.Combine(config.ResolvePath(run.Root), "finetune"));
    }

    public static JsonObject Summary(string outputDirectory) =>
        (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(outputDirectory, "summary.json")))!;

    public FineTuneOptions Options(params string[] overrides) => LoadConfig(overrides).Section<FineTuneOptions>("finetune");

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
