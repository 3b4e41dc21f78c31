using Forgetless.Data;
using static Forgetless.Tests.Data.PrepareFixture;

namespace Forgetless.Tests.Data;

public sealed class ReplayMixingTests
{
    [Theory]
    [InlineData(0.25, 7)]
    [InlineData(0.10, 8)]
    [InlineData(0.50, 9)]
    public async Task Replay_share_of_training_tokens_is_met_within_one_percent_and_weights_are_respected(double share, int seed)
    {
        using var f = new PrepareFixture();
        var random = new Random(seed);
        var task = f.WriteLines("task.jsonl", Enumerable.Range(0, 150).Select(i =>
            Json(new Dictionary<string, object?> { ["prompt"] = $"q{i} " + Words(random, 2), ["response"] = Words(random, random.Next(1, 5)) })));
        var web = f.WriteLines("web.txt", Enumerable.Range(0, 400).Select(i => $"w{i} " + Words(random, random.Next(1, 6))));
        var books = f.WriteLines("books.txt", Enumerable.Range(0, 400).Select(i => $"b{i} " + Words(random, random.Next(1, 6))));
        var options = Options(Instruction(task));
        options.ReplaySources = [Source(web, weight: 3), Source(books, weight: 1)];
        options.ReplayShare = share;
        options.Seed = seed;

        var (stats, output) = await f.RunAsync(options);

        var train = await ReadTrainAsync(output);
        var tokens = train.GroupBy(s => s.Source).ToDictionary(g => g.Key, g => (double)g.Sum(s => s.Length));
        var replay = tokens["web.txt"] + tokens["books.txt"];
        (replay / (replay + tokens["task.jsonl"])).Should().BeApproximately(share, 0.01);
        stats.AchievedReplayShare.Should().BeApproximately(share, 0.01);
        (tokens["web.txt"] / replay).Should().BeApproximately(0.75, 0.02);
        train.Where(s => s.Source != "task.jsonl").Should().OnlyContain(s => s.Kind == "replay");
        train.Where(s => s.Source == "task.jsonl").Should().OnlyContain(s => s.Kind == "task");
    }

    [Fact]
    public async Task A_small_replay_source_is_repeated_to_reach_the_share()
    {
        using var f = new PrepareFixture();
        var random = new Random(3);
        var task = f.WriteLines("task.txt", Enumerable.Range(0, 100).Select(i => $"t{i} " + Words(random, 4)));
        var replay = f.WriteLines("old.txt", Enumerable.Range(0, 10).Select(i => $"o{i} " + Words(random, 3)));
        var options = Options(Source(task));
        options.ReplaySources = [Source(replay)];
        options.ReplayShare = 0.4;

        var (stats, _) = await f.RunAsync(options);

        stats.AchievedReplayShare.Should().BeApproximately(0.4, 0.01);
        stats.Sources.Single(s => s.Name == "old.txt").UseFactor.Should().BeGreaterThan(3);
    }

    [Fact]
    public async Task Task_weight_scales_a_task_source()
    {
        using var f = new PrepareFixture();
        var random = new Random(4);
        var a = f.WriteLines("a.txt", Enumerable.Range(0, 200).Select(i => $"a{i} " + Words(random, 3)));
        var b = f.WriteLines("b.txt", Enumerable.Range(0, 200).Select(i => $"b{i} " + Words(random, 3)));

        var (stats, _) = await f.RunAsync(Options(Source(a, weight: 2), Source(b, weight: 0.5)));

        var sa = stats.Sources.Single(s => s.Name == "a.txt");
        var sb = stats.Sources.Single(s => s.Name == "b.txt");
        sa.Train.Tokens.Should().Be(2 * sa.AvailableTrainTokens);
        ((double)sb.Train.Tokens / sb.AvailableTrainTokens).Should().BeApproximately(0.5, 0.02);
    }

    [Fact]
    public async Task Generated_replay_is_marked_generated_and_counts_toward_the_share()
    {
        using var f = new PrepareFixture();
        var random = new Random(5);
        var task = f.WriteLines("task.txt", Enumerable.Range(0, 100).Select(i => $"t{i} " + Words(random, 4)));
        var options = Options(Source(task));
        options.ReplayShare = 0.2;
        options.GeneratedReplay = new GeneratedReplayOptions { Enabled = true, TokenBudget = 600, Seed = 11 };
        var generator = new FakeGenerator();

        var (stats, output) = await f.RunAsync(options, generator: generator);

        generator.Seeds.Should().Equal(11);
        stats.Kinds.Should().ContainKey("generated");
        stats.AchievedReplayShare.Should().BeApproximately(0.2, 0.01);
        (await ReadTrainAsync(output)).Where(s => s.Kind == "generated").Should().OnlyContain(s => s.Source == PrepareEngine.GeneratedSourceName);
    }

    private sealed class FakeGenerator : IReplayTextGenerator
    {
        public List<int> Seeds { get; } = [];

        public IEnumerable<string> Generate(int seed, long tokenBudget, CancellationToken cancellationToken)
        {
            Seeds.Add(seed);
            var random = new Random(seed);
            for (var i = 0; ; i++) yield return $"g{i} " + Words(random, 3);
        }
    }
}
