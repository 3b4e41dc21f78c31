using System.Text.Json;
using System.Text.Json.Nodes;
using Forgetless.Continual;
using Forgetless.Stages;
using Forgetless.Stages.Continual;
using Forgetless.Tests.FineTuning;
using Microsoft.Extensions.Logging.Abstractions;

namespace Forgetless.Tests.Continual;

/// <summary>
/// A two-task sequence on the tiny pipeline: "first letter of WORD is" → " c", "last letter of WORD is" → " t", each
/// with a four-choice held-out suite. Checks the shape of what a run produces and what isolation guarantees.
/// </summary>
[Collection(Forgetless.Tests.Peft.TorchSerial.Name)]
public sealed class ContinualRunTests
{
    private static readonly string[] Words = ["cat", "dog", "sun", "tree", "river", "stone", "light", "north", "maple", "orbit", "quiet", "sand", "tide", "wolf", "ember", "cloud"];

    private static void WriteTask(FineTuneFixture f, string name, Func<string, char> answer)
    {
        var random = new Random(name.Length);
        var train = new List<string>();
        var suite = new List<string>();
        for (int i = 0; i < 120; i++)
        {
            var word = Words[random.Next(Words.Length)] + Words[random.Next(Words.Length)][..2];
            string prompt = $"{name} letter of {word} is";
            train.Add(JsonSerializer.Serialize(new { prompt, response = " " + answer(word) }));
        }
        for (int i = 0; i < 24; i++)
        {
            var word = Words[random.Next(Words.Length)][..3] + Words[random.Next(Words.Length)][..1];
            var gold = answer(word);
            var choices = new[] { gold }.Concat("aeiost".Where(c => c != gold).Take(3)).Select(c => c.ToString()).ToArray();
            suite.Add(JsonSerializer.Serialize(new { query = $"{name} letter of {word} is", choices, gold = 0 }));
        }
        File.WriteAllLines(Path.Combine(f.Root, name + ".train.jsonl"), train);
        File.WriteAllLines(Path.Combine(f.Root, name + ".eval.jsonl"), suite);
    }

    internal static FineTuneFixture Sequence(JsonArray? gates = null)
    {
        var f = new FineTuneFixture();
        WriteTask(f, "first", w => w[0]);
        WriteTask(f, "last", w => w[^1]);
        var config = JsonNode.Parse(File.ReadAllText(f.ConfigPath))!.AsObject();
        config["continual"] = new JsonObject
        {
            ["tasks"] = new JsonArray(
                new JsonObject { ["name"] = "first", ["train"] = "first.train.jsonl", ["suite"] = "first.eval.jsonl" },
                new JsonObject { ["name"] = "last", ["train"] = "last.train.jsonl", ["suite"] = "last.eval.jsonl" }),
            ["settings"] = new JsonArray("finetune.steps=6", "finetune.evalEvery=6"),
            ["suiteLimit"] = 0,
            ["routerSamples"] = 20,
            ["bootstrapResamples"] = 50,
            ["strategies"] = new JsonArray(
                new JsonObject { ["name"] = "naive" },
                new JsonObject { ["name"] = "replay", ["replayRows"] = 30 },
                new JsonObject { ["name"] = "isolated", ["isolation"] = "perTask" }),
            ["gates"] = gates ?? new JsonArray(),
        };
        File.WriteAllText(f.ConfigPath, config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return f;
    }

    [Fact]
    public async Task Each_strategy_fills_the_matrix_isolation_has_no_backward_transfer_and_a_rerun_is_cached()
    {
        using var f = Sequence();
        var config = f.LoadConfig();
        var options = config.Section<ContinualOptions>("continual");
        var runner = new ContinualRunner(config, options, NullLogger.Instance, "test");
        var baseline = await runner.BaseAsync(CancellationToken.None);
        var runs = new List<StrategyRun>();
        foreach (var strategy in options.Strategies) runs.Add(await runner.RunAsync(strategy, baseline, CancellationToken.None));

        foreach (var run in runs)
        {
            var (r, b) = run.Scores.Matrix();
            r.GetLength(0).Should().Be(2);
            b.Should().OnlyContain(v => v >= 0 && v <= 1);
            run.Adapters.Should().HaveCount(2).And.OnlyContain(a => Directory.Exists(a));
        }
        var isolated = runs.Single(r => r.Strategy.Name == "isolated");
        var (ri, bi) = isolated.Scores.Matrix();
        (ri[1, 0] - ri[0, 0]).Should().Be(0, "the first task keeps its own adapter after the second step");
        ri[0, 1].Should().Be(bi[1], "before its step the second task is answered by the untrained model");
        isolated.Scores.Metrics().Bwt.Should().Be(0);

        // The replay strategy's second step mixes the earlier task's rows back in; the naive one does not.
        File.ReadAllText(Path.Combine(runner.Root, "replay", "2-last", "prepare", "stats.json")).Should().Contain("earlier-tasks");
        File.ReadAllText(Path.Combine(runner.Root, "naive", "2-last", "prepare", "stats.json")).Should().NotContain("earlier-tasks");

        // Everything is cached: a second run of a strategy reruns no stage.
        var manifest = Path.Combine(runner.Root, "naive", "2-last", "finetune", Forgetless.Runs.StageManifest.FileName);
        var before = File.ReadAllText(manifest);
        await runner.RunAsync(options.Strategies[0], baseline, CancellationToken.None);
        File.ReadAllText(manifest).Should().Be(before);

        // Isolation: the router tells the tasks apart by their wording and the adapters form a multi-adapter set.
        var router = await new TaskIsolation(runner, options, new StageContext(config), NullLogger.Instance, "test").EvaluateAsync(isolated, CancellationToken.None);
        // Prompts differ in one word among six, so the mean-embedding router is not perfect on the tiny model; chance is 0.5.
        router.Accuracy.Should().BeGreaterThanOrEqualTo(0.85, "'first letter of' and 'last letter of' are different words");
        var set = Path.Combine(runner.Root, "isolated", "adapters");
        Forgetless.Peft.AdapterSet.IsSet(set).Should().BeTrue();
        Forgetless.Peft.AdapterSet.Names(set).Should().Equal("first", "last");
    }

    [Fact]
    public async Task Isolated_adapters_package_as_a_PEFT_multi_adapter_set_that_verifies_and_a_failed_gate_refuses_it()
    {
        var gates = new JsonArray(
            new JsonObject { ["strategy"] = "isolated", ["metric"] = "bwt", ["min"] = 0.0, ["decision"] = "point" },
            new JsonObject { ["strategy"] = "isolated", ["metric"] = "forgetting", ["max"] = 0.0, ["decision"] = "point" });
        using var f = Sequence(gates);
        var config = f.LoadConfig();
        var options = config.Section<ContinualOptions>("continual");
        var runner = new ContinualRunner(config, options, NullLogger.Instance, "test");
        var isolated = options.Strategies.Single(s => s.Name == "isolated");

        var result = await new ContinualPackage(config, options, runner, NullLogger.Instance, "test").BuildAsync(isolated, CancellationToken.None);

        // PEFT's layout for named adapters: one adapter folder per name; the router beside them.
        foreach (var task in new[] { "first", "last" })
        {
            File.Exists(Path.Combine(result.Folder, task, "adapter_config.json")).Should().BeTrue();
            File.Exists(Path.Combine(result.Folder, task, "adapter_model.safetensors")).Should().BeTrue();
        }
        File.Exists(Path.Combine(result.Folder, "router.json")).Should().BeTrue();
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(result.Folder, Forgetless.Packaging.Provenance.FileName)))!;
        manifest["format"]!.ToString().Should().Be(Forgetless.Packaging.AdapterSetPackager.Format);
        manifest["continual"]!["gates"]!.AsArray().Should().HaveCount(2);
        File.ReadAllText(Path.Combine(result.Folder, "README.md")).Should().Contain("load_adapter").And.Contain("| 2. last |");

        Forgetless.Packaging.PackageVerifier.Verify(result.Archive, f.ModelDirectory).Problems.Should().BeEmpty();
        // Packaging is deterministic: the same run packaged again gives the same archive bytes.
        string sha = Forgetless.Runs.FileHashes.Compute(result.Archive);
        var again = await new ContinualPackage(config, options, runner, NullLogger.Instance, "test").BuildAsync(isolated, CancellationToken.None);
        Forgetless.Runs.FileHashes.Compute(again.Archive).Should().Be(sha);

        // Weights changed after packaging, even with SHA256SUMS rewritten, are caught by the recorded digests.
        string weights = Path.Combine(result.Folder, "last", "adapter_model.safetensors");
        var bytes = File.ReadAllBytes(weights);
        bytes[^1] ^= 0x40;
        File.WriteAllBytes(weights, bytes);
        Forgetless.Packaging.Sha256Sums.Write(result.Folder);
        Forgetless.Packaging.PackageVerifier.Verify(result.Folder).Problems.Should().Contain(p => p.Contains("last/adapter_model.safetensors") && p.Contains("not the weights"));

        // A gate the strategy fails refuses the package.
        options.Gates.Add(new ContinualGateOptions { Strategy = "isolated", Metric = "r", AfterTask = "first", Task = "last", Min = 1.0, Decision = Forgetless.Evaluation.GateDecision.Point });
        var refuse = () => new ContinualPackage(config, options, runner, NullLogger.Instance, "test").BuildAsync(isolated, CancellationToken.None);
        (await refuse.Should().ThrowAsync<GateRefusedException>()).Which.Message.Should().Contain("after first, last");
    }
}
