using Forgetless.Data;
using Parquet;
using static Forgetless.Tests.Data.PrepareFixture;

namespace Forgetless.Tests.Data;

public sealed class ParquetOutputTests
{
    [Fact]
    public async Task Output_round_trips_through_ParquetReader_with_the_documented_columns_and_metadata()
    {
        using var f = new PrepareFixture();
        var random = new Random(1);
        var task = f.WriteLines("t.jsonl", Enumerable.Range(0, 40).Select(i =>
            Json(new Dictionary<string, object?> { ["prompt"] = $"q{i}: ", ["response"] = Words(random, 2) })));
        var options = Options(Instruction(task));
        options.ReplaySources = [Source(f.WriteLines("r.txt", Enumerable.Range(0, 40).Select(i => $"r{i} " + Words(random, 3))))];
        options.ValidationFraction = 0.2;
        options.RowGroupSize = 4;
        options.ReplayShare = 0.3;

        var (stats, output) = await f.RunAsync(options);

        var file = Path.Combine(output, PreparedDataset.TrainFileName);
        await using (var reader = await ParquetReader.CreateAsync(file))
        {
            reader.Schema.Fields.Select(x => x.Name).Should().Equal("source", "kind", "input_ids", "loss_mask", "segment_ids", "length", "text");
            reader.RowGroupCount.Should().BeGreaterThan(1);
            reader.CustomMetadata["forgetless.tokenizer.sha256"].Should().Be("tokenizer-hash");
            reader.CustomMetadata["forgetless.split"].Should().Be("train");
            reader.CustomMetadata["forgetless.seq_len"].Should().Be("64");
            PrepareOptions.FromJson(reader.CustomMetadata["forgetless.prepare.config"]).ToJson().Should().Be(options.ToJson());
        }
        var rows = await ReadTrainAsync(output);
        rows.Should().HaveCount((int)stats.Train.Sequences);
        rows.Sum(r => (long)r.Length).Should().Be(stats.Train.Tokens);
        rows.Should().OnlyContain(r => r.InputIds.Length == 64 && r.LossMask.Length == 64 && r.SegmentIds.Length == 64);
        rows.Should().OnlyContain(r => r.SegmentIds.Max() == r.Text.Count);
        rows.Select(r => r.Kind).Distinct().Should().BeEquivalentTo("task", "replay");
        (await ReadValidationAsync(output)).Should().NotBeEmpty();
        File.Exists(Path.Combine(output, PreparedDataset.StatsFileName)).Should().BeTrue();
        Directory.GetFiles(output, "*.tmp").Should().BeEmpty();
    }

    [Fact]
    public async Task Same_seed_gives_the_same_bytes_and_another_seed_another_replay_sample()
    {
        using var f = new PrepareFixture();
        var random = new Random(2);
        var options = Options(Source(f.WriteLines("t.txt", Enumerable.Range(0, 60).Select(i => $"t{i} " + Words(random, 4)))));
        options.ReplaySources = [Source(f.WriteLines("r.txt", Enumerable.Range(0, 200).Select(i => $"r{i} " + Words(random, 4))))];
        options.ReplayShare = 0.3;

        var (_, a) = await f.RunAsync(options, "a");
        var (_, b) = await f.RunAsync(options, "b");
        options.Seed = 4321;
        var (_, c) = await f.RunAsync(options, "c");

        var train = PreparedDataset.TrainFileName;
        File.ReadAllBytes(Path.Combine(a, train)).Should().Equal(File.ReadAllBytes(Path.Combine(b, train)));
        File.ReadAllText(Path.Combine(a, PreparedDataset.StatsFileName)).Should().Be(File.ReadAllText(Path.Combine(b, PreparedDataset.StatsFileName)));
        var replayA = (await ReadTrainAsync(a)).Where(r => r.Kind == "replay").SelectMany(r => r.Text).ToHashSet();
        var replayC = (await ReadTrainAsync(c)).Where(r => r.Kind == "replay").SelectMany(r => r.Text).ToHashSet();
        replayA.SetEquals(replayC).Should().BeFalse();
    }
}
