using Forgetless.FineTuning;
using Forgetless.Model;
using Forgetless.Training.Terms;
using Forgetless.Tests.Peft;
using Microsoft.Extensions.Logging.Abstractions;
using static TorchSharp.torch;

namespace Forgetless.Tests.FineTuning;

[Collection(TorchSerial.Name)]
public sealed class RegularizerIntegrationTests
{
    [Theory]
    [InlineData("ewc", new[] { "finetune.regularizers=[ewc]", "finetune.ewc.samples=4" })]
    [InlineData("l2sp-lora", new[] { "finetune.regularizers=[l2sp]", "finetune.l2sp.lambda=0.01" })]
    [InlineData("l2sp-full", new[] { "finetune.method=full", "finetune.learningRate=0.005", "finetune.regularizers=[l2sp]", "finetune.l2sp.lambda=0.01" })]
    [InlineData("kd", new[] { "finetune.regularizers=[kd]", "finetune.kd.weight=0.5", "finetune.kd.temperature=2" })]
    [InlineData("all-adapter", new[] { "finetune.method=adapter", "finetune.regularizers=[ewc,l2sp,kd]", "finetune.ewc.samples=4" })]
    [InlineData("ewc-prefix", new[] { "finetune.method=prefix", "finetune.learningRate=0.05", "finetune.regularizers=[ewc]", "finetune.ewc.samples=4" })]
    [InlineData("si", new[] { "finetune.regularizers=[si]", "finetune.si.pathSteps=4" })]
    public async Task Each_regularizer_still_lets_the_task_loss_fall_and_is_logged(string name, string[] overrides)
    {
        using var f = new FineTuneFixture();
        var summary = await f.RunAsync(overrides: overrides);
        double before = summary["validation_task_loss_before"]!.GetValue<double>(), after = summary["validation_task_loss_after"]!.GetValue<double>();
        after.Should().BeLessThan(before - 0.05, $"{name}: {before} → {after}");
        var metrics = File.ReadAllText(Path.Combine(f.OutputDirectory, MetricsLog.FileName));
        // Each term is logged under its own name.
        foreach (var term in new[] { "ewc", "l2sp", "kd", "si" }.Where(t => overrides.Any(o => o.StartsWith("finetune.regularizers=", StringComparison.Ordinal) && o.Contains(t))))
            metrics.Should().Contain($"\"{term}\":", name);
        if (name.Contains("ewc") || name.StartsWith("all", StringComparison.Ordinal))
        {
            // The Fisher at the start (replay rows) and the one of the task at the end (left for a later run).
            Directory.EnumerateFiles(Path.Combine(f.RunRoot, ".cache", "fisher")).Should().HaveCount(2);
            File.Exists(Path.Combine(f.AdapterDirectory, Ewc.StateFile)).Should().BeTrue();
        }
    }

    [Fact]
    public void The_ewc_penalty_gradient_is_lambda_fisher_times_the_distance_from_the_anchor()
    {
        using var f = new FineTuneFixture();
        var options = f.Options("finetune.method=freeze", "finetune.freeze.layers=1", "finetune.regularizers=[ewc]", "finetune.ewc.lambda=3", "finetune.ewc.samples=3");
        using var tuned = options.Apply(ModelFolder.LoadModel(f.ModelDirectory), seed: 3);
        var rows = Enumerable.Range(0, 3).Select(i => new PreparedRow(
            Enumerable.Range(0, 10).Select(t => (3 * i + t) % 29).ToArray(), Enumerable.Repeat(true, 10).ToArray(), 10, "replay")).ToList();
        using var ewc = Ewc.Create(new TermContext
        {
            Tuned = tuned, Options = options.Plugins["ewc"], BaseModelDirectory = f.ModelDirectory, ReplayRows = rows, HeldoutRows = rows,
            CacheDirectory = Path.Combine(f.Root, "cache"), Logger = NullLogger.Instance,
        });
        var anchors = tuned.Trainable.ToDictionary(t => t.name, t => t.parameter.detach().clone());
        ewc.Fisher.Values.Sum(v => v.sum().item<float>()).Should().BeGreaterThan(0);

        using (no_grad())
        using (var g = new Generator(5))
            foreach (var (_, p) in tuned.Trainable) p.add_(randn(p.shape, generator: g).mul(Scalars.Of(0.1)), Scalars.One);
        foreach (var (_, p) in tuned.Trainable) p.grad?.zero_();
        using (var penalty = ewc.Penalty()) penalty.backward();

        foreach (var (name, p) in tuned.Trainable)
        {
            using var expected = ewc.Fisher[name].mul(p.detach().sub(anchors[name])).mul(Scalars.Of(3.0)); // d/dθ of λ/2·F(θ − θ*)²
            p.grad!.allclose(expected, rtol: 1e-4, atol: 1e-7).Should().BeTrue(name);
        }
    }

    [Fact]
    public async Task A_run_can_start_from_an_earlier_adapter_and_then_uses_online_ewc()
    {
        using var f = new FineTuneFixture();
        await f.RunAsync(runRoot: "first", overrides: ["finetune.regularizers=[ewc]", "finetune.ewc.samples=4"]);
        var first = Path.Combine(f.Root, "first", "finetune", "adapter");
        var summary = await f.RunAsync(runRoot: "second", overrides: ["finetune.regularizers=[ewc]", "finetune.ewc.samples=4", "finetune.initAdapter=" + first, "finetune.steps=4"]);
        // The second run starts where the first ended: its loss before training is the first run's loss after.
        var firstSummary = FineTuneFixture.Summary(Path.Combine(f.Root, "first", "finetune"));
        summary["validation_task_loss_before"]!.GetValue<double>().Should().BeApproximately(firstSummary["validation_task_loss_after"]!.GetValue<double>(), 1e-4);

        // Online EWC at the stage: the second run penalises with the Fisher the first one left, and leaves
        // γ·F_first + F_task2 — F_task2 the Fisher of its own task rows at the values it ended with, the one Fisher it
        // had to compute (its cache holds nothing else: it did not estimate a replay Fisher at its start).
        var (firstFisher, _) = Ewc.Load(Path.Combine(first, Ewc.StateFile));
        var (secondFisher, secondAnchors) = Ewc.Load(Path.Combine(f.Root, "second", "finetune", "adapter", Ewc.StateFile));
        var (taskFisher, _) = Ewc.Load(Directory.EnumerateFiles(Path.Combine(f.Root, "second", ".cache", "fisher")).Single());
        secondFisher.Keys.Should().BeEquivalentTo(firstFisher.Keys);
        foreach (var name in secondFisher.Keys)
        {
            using var expected = firstFisher[name].mul(Scalars.Of(0.9)).add(taskFisher[name], Scalars.One); // the default gamma 0.9
            secondFisher[name].allclose(expected, rtol: 1e-6, atol: 0).Should().BeTrue(name);
        }
        // The first run, which continued nothing, left γ·F_replay + F_task1 (two Fishers in its cache).
        var firstCache = Directory.EnumerateFiles(Path.Combine(f.Root, "first", ".cache", "fisher")).Select(p => Ewc.Load(p).fisher).ToList();
        firstCache.Should().HaveCount(2);
        bool Matches(Dictionary<string, TorchSharp.torch.Tensor> replay, Dictionary<string, TorchSharp.torch.Tensor> task) =>
            firstFisher.All(kv => kv.Value.allclose(replay[kv.Key].mul(Scalars.Of(0.9)).add(task[kv.Key], Scalars.One), rtol: 1e-6, atol: 0));
        (Matches(firstCache[0], firstCache[1]) || Matches(firstCache[1], firstCache[0])).Should().BeTrue();
        // The second run's anchors are the values it ended with: its adapter's own tensors.
        secondAnchors.Keys.Should().BeEquivalentTo(secondFisher.Keys);

        var act = async () => await f.RunAsync(runRoot: "third", overrides: ["finetune.method=adapter", "finetune.initAdapter=" + first]);
        await act.Should().ThrowAsync<Forgetless.Configuration.ConfigException>().WithMessage("*finetune.initAdapter*LORA*");
        var full = async () => await f.RunAsync(runRoot: "fourth", overrides: ["finetune.method=full", "finetune.initAdapter=" + first]);
        await full.Should().ThrowAsync<Forgetless.Configuration.ConfigException>().WithMessage("*finetune.initAdapter*FORGETLESS_WEIGHTS*");
    }

    [Fact]
    public async Task SI_leaves_its_importance_beside_the_adapter_and_a_continuing_run_is_penalised_by_it()
    {
        using var f = new FineTuneFixture();
        await f.RunAsync(runRoot: "first", overrides: ["finetune.regularizers=[si]", "finetune.si.pathSteps=0"]);
        var first = Path.Combine(f.Root, "first", "finetune");
        File.ReadAllText(Path.Combine(first, MetricsLog.FileName)).Should().NotContain("\"si\":", "without an earlier importance and no path, SI has no penalty yet");
        var (importance, anchors) = Si.Load(Path.Combine(first, "adapter", Si.StateFile));
        importance.Keys.Should().BeEquivalentTo(anchors.Keys).And.Contain(k => k.EndsWith("lora_B.weight"));
        importance.Values.Should().OnlyContain(t => t.min().item<float>() >= 0);
        importance.Values.Sum(t => t.sum().item<float>()).Should().BeGreaterThan(0, "training moved the adapter downhill");

        await f.RunAsync(runRoot: "second", overrides: ["finetune.regularizers=[si]", "finetune.initAdapter=" + Path.Combine(first, "adapter"), "finetune.steps=4"]);
        var penalties = File.ReadAllLines(Path.Combine(f.Root, "second", "finetune", MetricsLog.FileName))
            .Select(l => System.Text.Json.Nodes.JsonNode.Parse(l)!["si"]).Where(v => v is not null).Select(v => v!.GetValue<double>()).ToList();
        penalties.Should().NotBeEmpty().And.Contain(p => p > 0, "the second run pays for moving the first run's important weights");
    }

    [Fact]
    public async Task A_kd_teacher_with_the_adapter_the_student_starts_from_agrees_with_it_and_is_an_input()
    {
        using var f = new FineTuneFixture();
        await f.RunAsync(runRoot: "first", overrides: ["finetune.steps=6"]);
        var first = Path.Combine(f.Root, "first", "finetune", "adapter");
        var options = f.Options("finetune.regularizers=[kd]", "finetune.kd.teacherAdapter=" + first);
        using var tuned = options.Apply(ModelFolder.LoadModel(f.ModelDirectory), seed: 3, initAdapter: first);
        var rows = Enumerable.Range(0, 2).Select(i => new PreparedRow(
            Enumerable.Range(0, 10).Select(t => (5 * i + t) % 29).ToArray(), Enumerable.Repeat(true, 10).ToArray(), 10, "replay")).ToList();
        using var kd = Kd.Create(new TermContext
        {
            Tuned = tuned, Options = options.Plugins["kd"], BaseModelDirectory = f.ModelDirectory, ReplayRows = rows, HeldoutRows = [],
            CacheDirectory = Path.Combine(f.Root, "cache"), Logger = NullLogger.Instance,
        });
        using var batch = TokenBatch.Of(rows);
        using var logits = batch.Logits(tuned.Model);
        var value = kd.BatchLoss(new TermBatch { Rows = rows, Tokens = batch, Logits = logits, StepTargetTokens = batch.TargetTokens, MicroBatches = 1 })!.Value;
        value.Reported.item<float>().Should().BeApproximately(0f, 1e-6f, "student and teacher are the base model with the same adapter");

        // The teacher's adapter is an input of the stage: changing its files makes finetune stale.
        var stage = Forgetless.Stages.StageRegistry.Build(new Forgetless.Stages.StageContext(f.LoadConfig("finetune.regularizers=[kd]", "finetune.kd.teacherAdapter=" + first)))
            .Single(s => s.Name == "finetune");
        var inputs = new Forgetless.Runs.StageInputs();
        stage.DeclareInputs(inputs);
        inputs.Entries.Should().Contain(e => e.Name == "finetune.kd.teacherAdapter" && e.Kind == Forgetless.Runs.StageInputKind.Directory);
    }
}
