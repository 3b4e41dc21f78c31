using Forgetless.Configuration;
using Forgetless.Study;

namespace Forgetless.Tests.Study;

public sealed class StudyCellsTests
{
    private static StudyOptions Study() => new()
    {
        Target = new() { ValidationLoss = 1 },
        Settings = new() { ["finetune.evalEvery"] = "10" },
        Grid =
        [
            new() { Key = "finetune.method", Values = ["lora", "ia3"], Label = "" },
            new() { Key = "prepare.replayShare", Values = ["0", "0.5"], Label = "replay" },
        ],
        Cells = [new() { Name = "ewc", Set = new() { ["finetune.regularizers"] = "[ewc]" } }],
    };

    [Fact]
    public void A_grid_is_every_combination_first_axis_slowest_then_the_explicit_cells_each_after_the_common_settings()
    {
        var cells = StudyCells.Expand(Study());
        Assert.Equal(["methodlora-replay0", "methodlora-replay0.5", "methodia3-replay0", "methodia3-replay0.5", "ewc"], cells.Select(c => c.Name));
        Assert.Equal(["finetune.evalEvery=10", "finetune.method=ia3", "prepare.replayShare=0.5"], cells[3].Assignments);
        Assert.Equal(["finetune.evalEvery=10", "finetune.regularizers=[ewc]"], cells[4].Assignments);
    }

    [Fact]
    public void A_cell_setting_replaces_the_shared_one_of_the_same_key_and_each_key_is_listed_once()
    {
        // The shipped study turns distillation off for every cell but lora-distill (whose report step failed on the
        // key listed twice).
        var study = Study();
        study.Settings["distill.enabled"] = "false";
        study.Cells = [new() { Name = "lora-distill", Set = new() { ["distill.enabled"] = "true" } }];
        var cell = StudyCells.Expand(study).Single(c => c.Name == "lora-distill");
        Assert.Equal(["finetune.evalEvery=10", "distill.enabled=true"], cell.Assignments);
    }

    [Fact]
    public void Shards_split_the_cells_by_position_and_cover_each_exactly_once()
    {
        var cells = StudyCells.Expand(Study());
        // Five cells in three shards: positions 0,3 | 1,4 | 2.
        Assert.Equal(["methodlora-replay0", "methodia3-replay0.5"], StudyCells.Shard(cells, 1, 3).Select(c => c.Name));
        Assert.Equal(["methodlora-replay0.5", "ewc"], StudyCells.Shard(cells, 2, 3).Select(c => c.Name));
        Assert.Equal(["methodia3-replay0"], StudyCells.Shard(cells, 3, 3).Select(c => c.Name));
        Assert.Equal((2, 3), StudyCells.ParseShard("2/3"));
        foreach (var bad in new[] { "0/3", "4/3", "2", "a/b", "1/0" })
            Assert.Throws<ConfigException>(() => StudyCells.ParseShard(bad));
    }

    [Fact]
    public void A_name_given_twice_is_a_named_error()
    {
        var study = Study();
        study.Cells.Add(new() { Name = "ewc" });
        var error = Assert.Throws<ConfigException>(() => StudyCells.Expand(study));
        Assert.Contains("'ewc' is given 2 times", error.Message);
    }
}

public sealed class EvaluationChartPanelsTests
{
    [Fact]
    public void Losses_share_a_panel_and_every_other_series_has_its_own()
    {
        var series = new Dictionary<string, IReadOnlyList<(double, double)>>
        {
            ["loss"] = [(1, 4.0), (2, 3.5)], ["val_task_loss"] = [(2, 3.6)], ["heldout_loss"] = [(2, 5.0)],
            ["tokens"] = [(1, 40000), (2, 80000)], ["lr"] = [(1, 0.001), (2, 0.002)],
        };
        var panels = Forgetless.Evaluation.EvaluationCharts.Curves(new Forgetless.Evaluation.LearningCurves("metrics.jsonl", series));
        Assert.Equal(3, panels.Count);
        Assert.Contains("nats per token", panels[0]);
        Assert.All(new[] { "val_task_loss", "heldout_loss" }, name => Assert.Contains(name, panels[0]));
        // The tokens panel (up to 80,000) holds no loss: a loss is never drawn on the tokens' scale.
        var tokens = panels.Single(p => p.Contains("tokens", StringComparison.Ordinal));
        Assert.DoesNotContain("loss", tokens);
    }
}
