using System.Text.Json.Nodes;
using Forgetless.Model;
using Forgetless.Packaging;
using Forgetless.Peft;
using Forgetless.Runs;
using Forgetless.Tests.Model.Fixtures;
using static TorchSharp.torch;

namespace Forgetless.Tests.Packaging;

/// <summary>Tiny base models, LoRA adapters and evaluate outputs written into a temp folder.</summary>
internal static class PackageFixtures
{
    public static readonly ModuleTargets QV = ModuleTargets.Suffixes("q_proj", "v_proj");

    public static ModelConfig Llama() => ModelConfig.Llama(vocabSize: 64, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 64);

    public static ModelConfig Gpt2() => ModelConfig.FromJson(TinyCheckpoints.Create(new TinySpec("gpt2", Vocab: 64, Hidden: 16, Layers: 2, Heads: 2, KvHeads: 2)).ConfigJson);

    public static string SaveBase(string root, ModelConfig config, long seed = 5)
    {
        string path = Path.Combine(root, "base-" + config.ModelType);
        using var model = ModelFactory.Create(config, seed);
        ModelFolder.Save(model, path);
        return path;
    }

    /// <summary>A LoRA adapter with non-zero B (so it changes the logits), saved the way LoraMethod writes it.</summary>
    public static string SaveLora(string root, string baseModel, ModuleTargets targets, LoraOptions? options = null, string name = "adapter")
    {
        options ??= new LoraOptions { R = 2, Alpha = 4, Seed = 1 };
        string path = Path.Combine(root, name);
        using var model = ModelFolder.LoadModel(baseModel);
        Lora.Apply(model, targets, options);
        Perturb(model);
        LoraMethod.Write(path, model, new LoraAdapterConfig { Targets = targets, Options = options, BaseModelNameOrPath = "/abs/path/to/base" });
        return path;
    }

    public static void Perturb(nn.Module model, double scale = 0.3)
    {
        using var _ = no_grad();
        using var g = new Generator(2);
        foreach (var (_, layer) in AdapterLayers.Find(model))
            foreach (var (_, p) in layer.AdapterParameters())
            {
                using var noise = randn(p.shape, generator: g).mul(Scalars.Of(scale));
                p.add_(noise, Scalars.One);
            }
    }

    public static Tensor Ids() => tensor(new long[] { 1, 5, 9, 2, 33, 7, 12, 60 }, ScalarType.Int64).reshape(2, 4);

    /// <summary>
    /// An evaluate stage output: results.json with one gate (in the shape EvaluationReports writes it), the record of the
    /// weights it judged (<paramref name="judgedAdapter"/> on <paramref name="baseModel"/>, as the evaluate stage writes it)
    /// and its stage manifest (failure set when not passed).
    /// </summary>
    public static string EvaluateOutput(string runRoot, bool passed, bool manifestFailure = true, string? judgedAdapter = null, string? baseModel = null)
    {
        string dir = Path.Combine(runRoot, "evaluate");
        Directory.CreateDirectory(dir);
        var results = new JsonObject
        {
            ["results"] = new JsonObject { ["heldout"] = new JsonObject { ["bits_per_byte,none"] = 2.5 } },
            ["comparison"] = new JsonObject
            {
                ["heldout"] = new JsonObject
                {
                    ["type"] = "perplexity", ["role"] = "old", ["n"] = 2, ["base_source"] = "scored",
                    ["metrics"] = new JsonObject
                    {
                        ["bits_per_byte"] = new JsonObject { ["base"] = 2.4, ["candidate"] = 2.5, ["difference"] = 0.1, ["difference_ci"] = new JsonArray(0.05, 0.15) },
                    },
                },
            },
            ["higher_is_better"] = new JsonObject { ["heldout"] = new JsonObject { ["bits_per_byte"] = false } },
            ["gates"] = new JsonArray(new JsonObject
            {
                ["name"] = "heldout-forgetting", ["suite"] = "heldout", ["metric"] = "bits_per_byte", ["category"] = null, ["kind"] = "maxDrop", ["threshold"] = 0.15,
                ["relative"] = false, ["decision"] = "interval", ["any_of_interval"] = false,
                ["base"] = 2.4, ["candidate"] = passed ? 2.44 : 2.6, ["observed"] = passed ? 0.04 : 0.2, ["interval"] = passed ? new JsonArray(0.02, 0.06) : new JsonArray(0.18, 0.22),
                ["passed"] = passed,
                ["message"] = passed ? "heldout-forgetting: passed" : "heldout-forgetting: bits_per_byte got 0.2 worse (limit 0.15)",
            }),
            ["passed"] = passed,
            ["config"] = new JsonObject { ["adapter"] = "/somewhere/" + Guid.NewGuid(), ["options"] = new JsonObject { ["suites"] = new JsonArray() } },
            ["date"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
        };
        File.WriteAllText(Path.Combine(dir, "results.json"), results.ToJsonString());
        if (judgedAdapter is not null) JudgedWeights.Of(judgedAdapter, baseModel ?? throw new ArgumentNullException(nameof(baseModel))).Write(dir);
        new StageManifest
        {
            Stage = "evaluate",
            Fingerprint = "f",
            ToolVersion = "test",
            Inputs = [new StageManifest.InputRecord("evaluate.suites.heldout", "file", "heldout.jsonl", new string('a', 64), 10)],
            Outputs = Directory.GetFiles(dir).Select(f => new StageManifest.OutputRecord(Path.GetFileName(f), FileHashes.Compute(f), new FileInfo(f).Length)).ToList(),
            Started = DateTimeOffset.UtcNow,
            Finished = DateTimeOffset.UtcNow,
            Failure = passed || !manifestFailure ? null : "1 of 1 release gates failed: heldout-forgetting",
        }.Write(dir);
        return dir;
    }

    public static JsonObject Config() => Provenance.ConfigSections([
        new("run", """{"root":"runs","baseModel":"data/models/base","seed":1234}"""),
        new("prepare", """{"taskSources":[{"path":"data/task.jsonl"}],"replaySources":[{"path":"data/replay.txt"}],"replayShare":0.25}"""),
    ]);

    public static AdapterPackager Packager(string adapter, string baseModel, string evaluation, PackageOptions? options = null) => new()
    {
        Options = options ?? new PackageOptions(),
        Adapter = adapter,
        BaseModel = baseModel,
        Evaluation = evaluation,
        PreparedData = new string('b', 64),
        Config = Config(),
        SourceRevision = "0123456789abcdef0123456789abcdef01234567",
        Tools = new Dictionary<string, string> { ["forgetless"] = "test" },
    };
}
