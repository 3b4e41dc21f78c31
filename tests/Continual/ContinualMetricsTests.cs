using Forgetless.Continual;

namespace Forgetless.Tests.Continual;

public sealed class ContinualMetricsTests
{
    // R[i, j]: task j after step i; b: before training.
    private static readonly double[,] R = { { 0.8, 0.3, 0.2 }, { 0.6, 0.9, 0.25 }, { 0.5, 0.7, 0.95 } };
    private static readonly double[] B = [0.1, 0.2, 0.3];

    [Fact]
    public void ACC_BWT_FWT_and_forgetting_of_a_hand_made_matrix()
    {
        var m = ContinualMetrics.Of(R, B);
        m.Acc.Should().BeApproximately((0.5 + 0.7 + 0.95) / 3, 1e-12);              // 0.716667
        m.Bwt.Should().BeApproximately(((0.5 - 0.8) + (0.7 - 0.9)) / 2, 1e-12);      // −0.25
        m.Fwt.Should().BeApproximately(((0.3 - 0.2) + (0.25 - 0.3)) / 2, 1e-12);     // 0.025
        m.Forgetting.Should().BeApproximately(((0.8 - 0.5) + (0.9 - 0.7)) / 2, 1e-12); // best earlier score minus the last: 0.25
    }

    [Fact]
    public void Isolated_adapters_that_never_change_have_zero_backward_transfer_and_forgetting()
    {
        // Each task's score stays what it was after its own step; untrained tasks stay at b.
        double[,] r = { { 0.8, 0.2, 0.3 }, { 0.8, 0.9, 0.3 }, { 0.8, 0.9, 0.7 } };
        var m = ContinualMetrics.Of(r, B);
        m.Bwt.Should().Be(0);
        m.Forgetting.Should().Be(0);
        m.Fwt.Should().BeApproximately(0, 1e-12);
    }

    [Fact]
    public void A_score_before_the_task_was_trained_is_not_counted_as_forgetting()
    {
        // Task 1 scores 0.95 untrained (after step 0, say a majority-class answer), 0.9 after its own step, 0.9 at the end:
        // nothing it learned was lost. Task 0: best 0.8 after its step, 0.6 at the end → 0.2.
        double[,] r = { { 0.8, 0.95, 0.3 }, { 0.7, 0.9, 0.3 }, { 0.6, 0.9, 0.7 } };
        ContinualMetrics.Of(r, B).Forgetting.Should().BeApproximately((0.2 + 0.0) / 2, 1e-12);
    }

    [Fact]
    public void Item_scores_give_the_matrix_of_their_means_and_intervals_around_the_point()
    {
        // Two tasks, four items each: [task][step + 1][item].
        double[][][] items =
        [
            [[0, 0, 1, 0], [1, 1, 1, 0], [1, 0, 1, 0]],
            [[0, 1, 0, 0], [0, 1, 0, 1], [1, 1, 1, 1]],
        ];
        var scores = new ContinualScores(["a", "b"], items);
        var (r, b) = scores.Matrix();
        b.Should().Equal(0.25, 0.25);
        (r[0, 0], r[0, 1], r[1, 0], r[1, 1]).Should().Be((0.75, 0.5, 0.5, 1.0));
        var m = scores.Metrics();
        m.Bwt.Should().Be(0.5 - 0.75);
        m.Fwt.Should().Be(0.5 - 0.25);
        var ci = scores.Intervals(seed: 1, resamples: 400);
        ci.Acc.Contains(m.Acc).Should().BeTrue();
        ci.Bwt.Contains(m.Bwt).Should().BeTrue();
        ci.Bwt.High.Should().BeLessThanOrEqualTo(0.25).And.BeGreaterThan(ci.Bwt.Low);
    }

    [Fact]
    public void A_matrix_of_the_wrong_shape_is_refused()
    {
        var act = () => ContinualMetrics.Of(new double[2, 3], [0, 0]);
        act.Should().Throw<ArgumentException>();
    }
}
