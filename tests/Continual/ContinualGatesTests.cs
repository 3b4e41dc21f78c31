using Forgetless.Continual;
using Forgetless.Evaluation;

namespace Forgetless.Tests.Continual;

public sealed class ContinualGatesTests
{
    // Two tasks, four items each: [task][step + 1][item]. R = [[0.75, 0.25], [0.25, 1.0]], b = [0, 0]:
    // ACC = 0.625, BWT = 0.25 − 0.75 = −0.5, FWT = 0.25, forgetting = 0.5.
    private static readonly ContinualScores Scores = new(["a", "b"],
    [
        [[0, 0, 0, 0], [1, 1, 1, 0], [1, 0, 0, 0]],
        [[0, 0, 0, 0], [0, 1, 0, 0], [1, 1, 1, 1]],
    ]);

    private static ContinualGateVerdict Judge(string metric, double? min = null, double? max = null, GateDecision decision = GateDecision.Point,
        string afterTask = "", string task = "") =>
        ContinualGates.Judge(new ContinualGateOptions
        {
            Strategy = "naive", Metric = metric, Min = min, Max = max, Decision = decision, AfterTask = afterTask, Task = task,
        }, Scores, seed: 7, resamples: 1000);

    [Fact]
    public void Point_gates_read_the_hand_computed_summaries()
    {
        Judge("bwt", min: -0.6).Should().Match<ContinualGateVerdict>(v => v.Passed && v.Value == -0.5);
        Judge("bwt", min: -0.4).Passed.Should().BeFalse();
        Judge("acc", min: 0.625).Passed.Should().BeTrue();
        Judge("fwt", max: 0.2).Passed.Should().BeFalse();
        Judge("forgetting", max: 0.5).Should().Match<ContinualGateVerdict>(v => v.Passed && v.Value == 0.5);
    }

    [Fact]
    public void A_cell_gate_reads_row_after_task_and_column_task()
    {
        Judge("r", min: 0.25, afterTask: "b", task: "a").Should().Match<ContinualGateVerdict>(v => v.Passed && v.Value == 0.25);
        Judge("r", min: 0.9, afterTask: "a", task: "a").Should().Match<ContinualGateVerdict>(v => !v.Passed && v.Value == 0.75);
        Judge("r", max: 0.2, afterTask: "a", task: "b").Passed.Should().BeFalse();
    }

    [Fact]
    public void Non_inferiority_needs_the_bound_not_the_point_to_meet_the_threshold()
    {
        // Task a's item changes are 0, −1, −1, 0: a resample of four is all −1 with probability 1/16 > 5%, so the
        // one-sided 95% bound on BWT is −1 and the gate fails although the point (−0.5) is within −0.6.
        var verdict = Judge("bwt", min: -0.6, decision: GateDecision.NonInferiority);
        verdict.Value.Should().Be(-0.5);
        verdict.Judged.Should().Be(-1);
        verdict.Passed.Should().BeFalse();
        verdict.Message.Should().Contain("FAIL").And.Contain("one-sided 95% bound -1");
        Judge("bwt", min: -1, decision: GateDecision.NonInferiority).Passed.Should().BeTrue();
    }

    [Fact]
    public void Gates_name_what_is_wrong_in_their_configuration()
    {
        var options = new ContinualOptions
        {
            Tasks = [new ContinualTask { Name = "a", Train = "a.jsonl", Suite = "a.eval.jsonl" }],
            Strategies = [new ContinualStrategy { Name = "naive" }],
            Gates =
            [
                new ContinualGateOptions { Strategy = "replay", Metric = "bwt", Min = 0 },
                new ContinualGateOptions { Strategy = "naive", Metric = "r", Task = "a", Min = 0.5 },
                new ContinualGateOptions { Strategy = "naive", Metric = "acc", Min = 0.5, Max = 0.9 },
                new ContinualGateOptions { Strategy = "naive", Metric = "accuracy", Max = 1 },
            ],
        };
        options.Validate().Should().BeEquivalentTo(
            "gates[0].strategy = 'replay': not a configured strategy (naive)",
            "gates[1].afterTask = '': a gate on a cell of R names the row's task (a)",
            "gates[2].min/max: set exactly one of min and max",
            "gates[3].metric = 'accuracy': expected one of acc, bwt, fwt, forgetting, r");
    }
}
