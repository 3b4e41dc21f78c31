using System.Text.Json.Nodes;
using Forgetless.Configuration;
using Forgetless.Study;

namespace Forgetless.Tests.Study;

/// <summary>A study whose target is a held-out task accuracy: finetune probes it at every evaluation with Evaluate's scoring and stops at it.</summary>
public sealed class StudyAccuracyTargetTests
{
    [Fact]
    public async Task Cells_train_to_a_held_out_accuracy_and_the_one_that_never_reaches_it_is_shown_as_missed()
    {
        using var f = new StudyFixture();
        f.AddFormatSuite();
        f.WriteStudyWithTarget($$"""{ "heldoutAccuracy": {{StudyFixture.TargetAccuracy}}, "suite": "format", "items": 24 }""");
        var runner = f.Runner();
        await runner.RunAsync(runner.Cells, CancellationToken.None);
        var report = runner.Report([runner.Root], verify: true);

        // The fast cell stops at the first evaluation whose accuracy (as metrics.jsonl logged it) is at the target.
        var fast = Evaluations(runner.Root, "fast");
        long reachedAt = fast.First(e => e.Accuracy >= StudyFixture.TargetAccuracy).Step;
        var fastSummary = Summary(runner.Root, "fast");
        Assert.Equal("target_accuracy", fastSummary["stop_reason"]!.GetValue<string>());
        Assert.Equal(reachedAt, fastSummary["steps"]!.GetValue<long>());
        Assert.True(reachedAt < 12);
        // The probe is Evaluate's scoring: evaluate, scoring the saved adapter on the same 24 items, finds the accuracy
        // the probe found at the stop (the weights that reached the target are the ones kept).
        var evaluate = JsonNode.Parse(File.ReadAllText(Path.Combine(runner.Root, "fast", "evaluate", "results.json")))!;
        Assert.Equal(24, evaluate["comparison"]!["format"]!["n"]!.GetValue<int>());
        Assert.Equal(fast.Last().Accuracy, evaluate["comparison"]!["format"]!["metrics"]!["acc"]!["candidate"]!.GetValue<double>(), 5);
        // Before training both cells score the base model: Evaluate's base accuracy on the same items.
        Assert.Equal(fast[0].Accuracy, evaluate["comparison"]!["format"]!["metrics"]!["acc"]!["base"]!.GetValue<double>(), 5);

        var slow = Evaluations(runner.Root, "slow");
        Assert.All(slow, e => Assert.True(e.Accuracy < StudyFixture.TargetAccuracy));
        Assert.Equal(12, Summary(runner.Root, "slow")["steps"]!.GetValue<long>());

        var json = report.Json();
        Assert.Equal("""{"heldout_task_accuracy":0.6,"suite":"format","metric":"acc","items":24,"step_cap":12}""", json["target"]!.ToJsonString());
        var cells = json["cells"]!.AsArray();
        Assert.Equal("reached", cells[0]!["status"]!.GetValue<string>());
        Assert.Equal(reachedAt, cells[0]!["steps"]!.GetValue<long>());
        Assert.Equal(fastSummary["tokens"]!.GetValue<long>(), cells[0]!["tokens"]!.GetValue<long>());
        Assert.Equal("missed", cells[1]!["status"]!.GetValue<string>());
        Assert.Equal(slow.Max(e => e.Accuracy), cells[1]!["best_heldout_task_accuracy"]!.GetValue<double>(), 5);
        Assert.Equal(["fast"], json["learning_frontier"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.StartsWith("1 of 2 cells reached a held-out format acc of 0.6 (its first 24 items) within 12 steps; slow did not", report.Recommendation());
        Assert.Contains(FormattableString.Invariant($"**no** (best {slow.Max(e => e.Accuracy)})"), report.Markdown());
    }

    /// <summary>Exit 2 for these is the ConfigException's (a target of no kind through the CLI: StudyConfigTests).</summary>
    [Fact]
    public void A_target_of_no_kind_two_kinds_or_a_metric_the_suite_lacks_is_a_configuration_error_naming_the_key()
    {
        using var f = new StudyFixture();
        f.AddFormatSuite();

        f.WriteStudyWithTarget("""{ "validationLoss": 4.0, "heldoutAccuracy": 0.5 }""");
        var both = Assert.Throws<ConfigException>(() => f.Runner());
        Assert.Contains("study.target: sets both validationLoss and heldoutAccuracy", both.Message);
        Assert.Contains("validationLoss (a validation task loss", both.Message);
        Assert.Contains("heldoutAccuracy (a rate in (0, 1])", both.Message);

        f.WriteStudyWithTarget("""{ "accuracy": 0.5 }""");
        var unknown = Assert.Throws<ConfigException>(() => f.Runner());
        Assert.Contains("'study.target.accuracy'", unknown.Message);
        Assert.Contains("heldoutAccuracy", unknown.Message);

        f.WriteStudyWithTarget("""{ "heldoutAccuracy": 1.5 }""");
        Assert.Contains("study.target.heldoutAccuracy = 1.5: must be a rate in (0, 1]", Assert.Throws<ConfigException>(() => f.Runner()).Message);

        f.WriteStudyWithTarget("""{ "validationLoss": 4.0, "metric": "acc" }""");
        Assert.Contains("study.target.metric: belongs to a heldoutAccuracy target", Assert.Throws<ConfigException>(() => f.Runner()).Message);

        // Cross-checked against evaluate's suites when the cells' stages are built, before any cell runs.
        f.WriteStudyWithTarget("""{ "heldoutAccuracy": 0.5, "metric": "f1" }""");
        var metric = Assert.Throws<ConfigException>(() => f.Runner().CellStages(f.Runner().Cells[0], f.Root));
        Assert.Contains("finetune.targetAccuracyMetric = 'f1': must be one of acc, acc_norm, acc_bytes, acc_choice, exact_match, normalized_match", metric.Message);

        f.WriteStudyWithTarget("""{ "heldoutAccuracy": 0.5, "suite": "format", "metric": "acc_choice" }""");
        var runner = f.Runner();
        Assert.Contains("finetune.targetAccuracyMetric = 'acc_choice': suite 'format' (MultipleChoice) has acc, acc_norm, acc_bytes",
            Assert.Throws<ConfigException>(() => runner.CellStages(runner.Cells[0], f.Root)).Message);

        f.WriteStudyWithTarget("""{ "heldoutAccuracy": 0.5, "suite": "heldout" }""");
        runner = f.Runner();
        Assert.Contains("finetune.targetAccuracySuite = 'heldout': a Perplexity suite has no accuracy; expected one of spell, format",
            Assert.Throws<ConfigException>(() => runner.CellStages(runner.Cells[0], f.Root)).Message);

        f.WriteStudyWithTarget("""{ "heldoutAccuracy": 0.5, "suite": "nope" }""");
        runner = f.Runner();
        Assert.Contains("finetune.targetAccuracySuite = 'nope': evaluate has no suite of that name; expected one of spell, format",
            Assert.Throws<ConfigException>(() => runner.CellStages(runner.Cells[0], f.Root)).Message);
    }

    private sealed record Evaluation(long Step, double Accuracy);

    /// <summary>The evaluations in a cell's finetune metrics.jsonl (rows with the held-out task accuracy).</summary>
    private static List<Evaluation> Evaluations(string studyRoot, string cell) =>
        File.ReadLines(Path.Combine(studyRoot, cell, "finetune", "metrics.jsonl")).Select(l => JsonNode.Parse(l)!)
            .Where(r => r["heldout_task_acc"] is not null)
            .Select(r => new Evaluation(r["step"]!.GetValue<long>(), r["heldout_task_acc"]!.GetValue<double>())).ToList();

    private static JsonObject Summary(string studyRoot, string cell) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(studyRoot, cell, "finetune", "summary.json")))!.AsObject();
}

/// <summary>Finetune with a target accuracy, stopped and resumed: it stops where an uninterrupted run stops, with the same bytes.</summary>
[Collection(Forgetless.Tests.Peft.TorchSerial.Name)]
public sealed class AccuracyTargetResumeTests
{
    [Theory]
    [InlineData("reached", "0.6")] // at step 4 (measured), after the first checkpoint (step 3)
    [InlineData("missed", "1")]    // never: it trains to the cap, its best accuracy as the uninterrupted run's
    public async Task A_resumed_run_stops_at_the_step_of_an_uninterrupted_one(string name, string target)
    {
        using var f = new StudyFixture();
        f.AddFormatSuite();
        string[] overrides = ["finetune.evalEvery=2", "finetune.targetAccuracy=" + target, "finetune.targetAccuracySuite=format", "finetune.targetAccuracyItems=24"];
        var straight = await f.Pipeline.RunAsync(runRoot: "straight", overrides: overrides);
        string resumed = await Forgetless.Tests.FineTuning.FirstCheckpointCancellation.RunAsync(f.Root, "resumed", "finetune",
            (token, root) => f.Pipeline.RunAsync(token, root, overrides));
        var summary = await f.Pipeline.RunAsync(runRoot: resumed, overrides: overrides);

        Assert.True(summary["resumed_from_step"]!.GetValue<long>() > 0, name);
        Assert.Equal(straight["stop_reason"]!.GetValue<string>(), summary["stop_reason"]!.GetValue<string>());
        Assert.Equal(name == "reached" ? "target_accuracy" : "steps", summary["stop_reason"]!.GetValue<string>());
        Assert.Equal(straight["steps"]!.GetValue<long>(), summary["steps"]!.GetValue<long>());
        Assert.Equal(straight["best_heldout_task_accuracy"]!.GetValue<double>(), summary["best_heldout_task_accuracy"]!.GetValue<double>());
        Assert.Equal(File.ReadAllBytes(Path.Combine(f.Root, "straight", "finetune", "adapter", Forgetless.Peft.AdapterTensors.WeightsFile)),
            File.ReadAllBytes(Path.Combine(f.Root, resumed, "finetune", "adapter", Forgetless.Peft.AdapterTensors.WeightsFile)));
    }
}
