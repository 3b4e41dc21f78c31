using Forgetless.Evaluation;
using Forgetless.Model;
using Forgetless.Peft;
using Forgetless.Runs;
using Forgetless.Stages.Evaluate;
using Forgetless.Tests.Corpora;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Tests.Evaluation;

/// <summary>The stage end to end under the run store: a real model folder, a saved LoRA adapter, gates, exit semantics.</summary>
[Collection(Forgetless.Tests.Peft.TorchSerial.Name)]
public sealed class EvaluateStageTests
{
    private static readonly ModuleTargets QV = ModuleTargets.Suffixes("q_proj", "v_proj");

    /// <summary>A tiny llama saved with the repository's tokenizer, and a LoRA adapter with non-zero B saved beside it.</summary>
    private static (string Base, string Adapter) Models(TempDirectory dir, double loraScale = 0.5)
    {
        string tokenizer = Path.Combine(RepoData.Root, "data", "tokenizer");
        var config = ModelConfig.Llama(vocabSize: 8192, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 64);
        string basePath = Path.Combine(dir.Path, "base");
        using (var model = ModelFactory.Create(config, 5)) ModelFolder.Save(model, basePath, new ModelSaveOptions { TokenizerDirectory = tokenizer });
        string adapter = Path.Combine(dir.Path, "adapter");
        using (var model = ModelFolder.LoadModel(basePath))
        {
            var options = new LoraOptions { R = 2, Alpha = 4, Seed = 1 };
            Lora.Apply(model, QV, options);
            using (no_grad())
            {
                using var g = new TorchSharp.torch.Generator(2);
                foreach (var (_, layer) in AdapterLayers.Find(model))
                    ((LoraLinear)layer).lora_B.weight.copy_(randn(((LoraLinear)layer).lora_B.weight.shape, generator: g).mul(Scalars.Of(loraScale)));
            }
            LoraMethod.Write(adapter, model, new LoraAdapterConfig { Targets = QV, Options = options });
        }
        File.WriteAllText(Path.Combine(dir.Path, "metrics.jsonl"), "{\"step\":1,\"loss\":9.1}\n{\"step\":2,\"loss\":8.7}\n");
        return (basePath, adapter);
    }

    private static EvaluateOptions Options(TempDirectory dir) => new()
    {
        Suites =
        [
            new SuiteOptions { Name = "heldout", Type = SuiteType.Perplexity, Path = dir.File("heldout.jsonl",
                "{\"text\":\"The jury said it did find that the election was conducted.\",\"category\":\"news\"}\n{\"text\":\"He went home early.\",\"category\":\"fiction\"}\n") },
            new SuiteOptions { Name = "facts", Type = SuiteType.MultipleChoice, Path = dir.File("facts.jsonl",
                "{\"query\":\"An abyss is a kind of\",\"choices\":[\"chasm\",\"seat\"],\"gold\":0,\"category\":\"seen\"}\n") },
            new SuiteOptions { Name = "pronounce", Type = SuiteType.Generation, Role = SuiteRole.New, MaxNewTokens = 4, Path = dir.File("pronounce.jsonl",
                "{\"prompt\":\"Pronounce \\\"carve\\\" in ARPAbet:\",\"reference\":\" K AA1 R V\"}\n") },
        ],
        Gates =
        [
            new GateOptions { Name = "heldout-forgetting", Suite = "heldout", Metric = "bits_per_byte", MaxDrop = 10, Relative = true },
            new GateOptions { Name = "pronounce-learned", Suite = "pronounce", Metric = "exact_match", MinGain = 0.5 },
        ],
        BootstrapResamples = 200,
        SampleGenerations = 1,
    };

    [Fact]
    public async Task A_failed_gate_publishes_the_reports_and_sets_the_failure_then_a_new_adapter_reuses_the_base_scores()
    {
        using var dir = new TempDirectory();
        var (basePath, adapter) = Models(dir);
        var options = Options(dir);
        string root = Path.Combine(dir.Path, "runs");
        var store = new RunStore(root, "test", NullLogger.Instance);
        var context = StageContexts.For(dir.Path, "run.baseModel=" + basePath, "run.root=" + root, "run.seed=1234");
        var stage = new EvaluateStage(context, options, candidateStage: null, adapterFolder: adapter, "test");

        var inputs = new StageInputs();
        stage.DeclareInputs(inputs);
        inputs.Entries.Select(e => e.Name).Should().Contain(["run.baseModel", "evaluate.adapter", "config.evaluate", "run.seed", "evaluate.suites.heldout"]);
        inputs.Entries.Should().NotContain(e => e.Kind == StageInputKind.Upstream);

        var first = await store.RunAsync(stage, force: false, CancellationToken.None);
        first.Manifest.Failure.Should().Contain("1 of 2 release gates failed").And.Contain("pronounce");
        foreach (var file in new[] { "results.json", "junit.xml", "report.md", "report.html" })
            File.Exists(Path.Combine(root, "evaluate", file)).Should().BeTrue(file);
        File.ReadAllText(Path.Combine(root, "evaluate", "report.html")).Should().Contain("Learning curves");
        first.Manifest.Metrics["base_from_cache"].Should().Be(0);

        (await store.RunAsync(stage, false, CancellationToken.None)).Skipped.Should().BeTrue();

        // A different candidate: the stage reruns, the base comes from the cache.
        var (_, adapter2) = Models(new TempDirectory(), loraScale: 0.9);
        var stage2 = new EvaluateStage(context, options, null, adapter2, "test");
        var second = await store.RunAsync(stage2, false, CancellationToken.None);
        second.Skipped.Should().BeFalse();
        second.Manifest.Metrics["base_from_cache"].Should().Be(3);
    }

    [Fact]
    public async Task Without_an_adapter_the_candidate_is_the_upstream_stage_adapter()
    {
        using var dir = new TempDirectory();
        string root = Path.Combine(dir.Path, "runs");
        var stage = new EvaluateStage(StageContexts.For(dir.Path, "run.baseModel=base", "run.root=" + root, "run.seed=1"), Options(dir), candidateStage: "finetune", adapterFolder: null, "test");
        var inputs = new StageInputs();
        stage.DeclareInputs(inputs);
        inputs.Entries.Should().ContainSingle(e => e.Kind == StageInputKind.Upstream && e.Source == "finetune");

        var store = new RunStore(root, "test", NullLogger.Instance);
        var act = () => store.RunAsync(stage, false, CancellationToken.None);
        (await act.Should().ThrowAsync<UserInputException>()).Which.Message.Should().Contain("finetune").And.Contain("--adapter");
        Directory.Exists(Path.Combine(root, "evaluate")).Should().BeFalse();
    }
}
