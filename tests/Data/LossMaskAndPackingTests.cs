using Forgetless.Data;
using static Forgetless.Tests.Data.PrepareFixture;

namespace Forgetless.Tests.Data;

public sealed class LossMaskAndPackingTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Loss_mask_covers_exactly_the_response_tokens_and_eos(bool withBos)
    {
        using var f = new PrepareFixture();
        var task = f.WriteLines("t.jsonl", [Json(new Dictionary<string, object?> { ["prompt"] = "Say hi: ", ["response"] = "hello there" })]);
        var options = Options(Instruction(task));
        options.Packing = PackingMode.Pad;

        var (_, output) = await f.RunAsync(options, withBos: withBos);

        var row = (await ReadTrainAsync(output)).Single();
        var tokenizer = new CharTokenizer();
        var lead = withBos ? 1 : 0;
        row.Length.Should().Be(lead + "Say hi: ".Length + "hello there".Length + 1);
        var targets = row.InputIds.Where((_, i) => row.LossMask[i]).ToArray();
        targets.Should().Equal([.. tokenizer.Encode("hello there"), 2]);
        row.LossMask.Take(lead + "Say hi: ".Length).Should().OnlyContain(m => !m);
        row.LossMask.Skip(row.Length).Should().OnlyContain(m => !m);
        row.InputIds.Skip(row.Length).Should().OnlyContain(id => id == 0);
        if (withBos) row.InputIds[0].Should().Be(1);
        row.Text.Should().Equal("Say hi: hello there");
    }

    [Fact]
    public async Task Packing_keeps_documents_whole_separated_by_eos_with_segment_ids()
    {
        using var f = new PrepareFixture();
        var text = f.WriteLines("p.txt", ["aaaa", "bbbbbb", "cc", "dddddddddd"]);
        var options = Options(Source(text));
        options.SeqLen = 12;

        var (stats, output) = await f.RunAsync(options);

        var rows = await ReadTrainAsync(output);
        rows.Select(r => r.Text).Should().BeEquivalentTo(new[] { new[] { "aaaa", "bbbbbb" }, ["cc"], ["dddddddddd"] }, o => o.WithStrictOrdering());
        var first = rows[0];
        first.Length.Should().Be(12);
        first.InputIds[4].Should().Be(2);
        first.InputIds[11].Should().Be(2);
        first.SegmentIds.Should().Equal(1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2);
        first.LossMask.Should().OnlyContain(m => m);
        rows[1].SegmentIds.Should().Equal(1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        stats.Train.PadTokens.Should().Be(9 + 1);
    }

    [Fact]
    public async Task Training_reads_the_documents_of_packed_rows()
    {
        using var f = new PrepareFixture();
        var text = f.WriteLines("p.txt", ["aaaa", "bbbbbb", "cc", "dddddddddd"]);
        var options = Options(Source(text));
        options.SeqLen = 12;
        var (_, output) = await f.RunAsync(options);

        var rows = Forgetless.FineTuning.PreparedBatches.Read(Path.Combine(output, PreparedDataset.TrainFileName));
        var packed = rows.Single(r => r.Length == 12 && r.InputIds[4] == 2 && r.InputIds[0] != r.InputIds[5]);
        packed.IsPacked.Should().BeTrue();
        packed.SegmentIds.Should().Equal(1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2);
        packed.IsTarget(5).Should().BeFalse("the second document's first token is not predicted from the first document");
        packed.IsTarget(6).Should().BeTrue();
        rows.Where(r => r != packed).Should().OnlyContain(r => r.SegmentIds == null, "a row of one document needs no segment ids");
    }

    [Theory]
    [InlineData(OverLengthPolicy.Truncate, 2, 1, 0)]
    [InlineData(OverLengthPolicy.Drop, 1, 0, 1)]
    public async Task Over_long_rows_are_truncated_or_dropped_and_counted(OverLengthPolicy policy, int rows, int truncated, int dropped)
    {
        using var f = new PrepareFixture();
        var text = f.WriteLines("l.txt", ["short", new string('x', 40)]);
        var options = Options(Source(text));
        options.SeqLen = 16;
        options.OverLength = policy;

        var (stats, output) = await f.RunAsync(options);

        var all = await ReadTrainAsync(output);
        all.Should().HaveCount(rows);
        all.Should().OnlyContain(r => r.InputIds.Length == 16);
        stats.Filtered.Truncated.Should().Be(truncated);
        stats.Filtered.Dropped.Should().Be(dropped);
    }
}
