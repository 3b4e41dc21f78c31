using Forgetless.Continual;

namespace Forgetless.Tests.Continual;

public sealed class ReservoirTests
{
    [Fact]
    public void Below_capacity_every_item_is_kept_in_order()
    {
        var r = new Reservoir<int>(5, 1);
        r.OfferAll([1, 2, 3]);
        r.Items.Should().Equal(1, 2, 3);
        r.Seen.Should().Be(3);
    }

    [Fact]
    public void Every_item_of_a_stream_is_kept_with_probability_capacity_over_n()
    {
        // 10 items, capacity 3: each should survive in 30% of samples, whatever its position in the stream.
        var kept = new int[10];
        const int trials = 20000;
        for (int seed = 0; seed < trials; seed++)
        {
            var r = new Reservoir<int>(3, (ulong)seed * 7919 + 1);
            r.OfferAll(Enumerable.Range(0, 10));
            r.Items.Should().HaveCount(3).And.OnlyHaveUniqueItems();
            foreach (var i in r.Items) kept[i]++;
        }
        // Binomial(20000, 0.3): sd ≈ 65; allow 4.5 sd.
        kept.Should().OnlyContain(k => Math.Abs(k - 0.3 * trials) < 300);
    }

    [Fact]
    public void The_same_seed_keeps_the_same_sample()
    {
        static IReadOnlyList<int> Sample(ulong seed)
        {
            var r = new Reservoir<int>(4, seed);
            r.OfferAll(Enumerable.Range(0, 100));
            return r.Items;
        }
        Sample(42).Should().Equal(Sample(42));
        Sample(42).Should().NotEqual(Sample(43));
    }
}
