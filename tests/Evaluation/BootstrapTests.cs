using Forgetless.Evaluation;

namespace Forgetless.Tests.Evaluation;

public sealed class BootstrapTests
{
    [Fact]
    public void Paired_interval_covers_the_true_difference_at_about_the_nominal_rate()
    {
        // 200 simulated data sets of 50 paired items: base ~ N(0, 1), candidate = base + 0.1 + N(0, 0.5).
        // The true difference of means is 0.1; a 95% interval should contain it ~95% of the time.
        var random = new Random(2024);
        var metric = MetricDefinition.Mean("score");
        int covered = 0;
        const int datasets = 200, n = 50;
        for (int d = 0; d < datasets; d++)
        {
            var b = new List<ItemScore>(n);
            var c = new List<ItemScore>(n);
            for (int i = 0; i < n; i++)
            {
                double x = Normal(random), y = x + 0.1 + 0.5 * Normal(random);
                b.Add(new ItemScore(null, new Dictionary<string, double> { ["score"] = x }));
                c.Add(new ItemScore(null, new Dictionary<string, double> { ["score"] = y }));
            }
            if (Bootstrap.PairedDifference(metric, b, c, seed: d, resamples: 250).Contains(0.1)) covered++;
        }
        double coverage = covered / (double)datasets;
        coverage.Should().BeInRange(0.90, 0.99);
    }

    [Fact]
    public void Same_seed_same_interval_and_pairing_narrows_it()
    {
        var random = new Random(1);
        var metric = MetricDefinition.Mean("score");
        var b = Enumerable.Range(0, 100).Select(_ => new ItemScore(null, new Dictionary<string, double> { ["score"] = Normal(random) })).ToList();
        var c = b.Select(x => new ItemScore(null, new Dictionary<string, double> { ["score"] = x.Values["score"] + 0.05 })).ToList();
        var first = Bootstrap.PairedDifference(metric, b, c, seed: 3);
        Bootstrap.PairedDifference(metric, b, c, seed: 3).Should().Be(first);
        // Every item moved by exactly 0.05: a paired interval has no width left.
        (first.High - first.Low).Should().BeLessThan(1e-9);
        first.Low.Should().BeApproximately(0.05, 1e-9);
    }

    [Fact]
    public void Standard_error_of_a_mean_is_sample_std_over_root_n()
    {
        var items = new[] { 0.0, 1, 1, 1 }.Select(v => new ItemScore(null, new Dictionary<string, double> { ["acc"] = v })).ToList();
        double se = MetricDefinition.Mean("acc").StandardError(items, [0, 1, 2, 3], seed: 1);
        se.Should().BeApproximately(Math.Sqrt(0.25 / 4), 1e-12); // sample variance 0.25
    }

    private static double Normal(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
