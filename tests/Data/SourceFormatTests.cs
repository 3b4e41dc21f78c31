using Forgetless.Data;
using Parquet.Serialization;
using static Forgetless.Tests.Data.PrepareFixture;

namespace Forgetless.Tests.Data;

public sealed class SourceFormatTests
{
    [Fact]
    public async Task Parquet_csv_and_text_task_sources_map_their_fields()
    {
        using var f = new PrepareFixture();
        var parquet = Path.Combine(f.Root, "in.parquet");
        await ParquetSerializer.SerializeAsync(new[] { new QaRow { question = "Q1? ", answer = "A1" }, new QaRow { question = "Q2? ", answer = "A2" } }, parquet);
        var csv = f.Write("in.csv", "body,extra\n\"c, one\",x\n");
        var text = f.WriteLines("in.txt", ["plain one", "", "plain two"]);

        var (stats, output) = await f.RunAsync(Options(
            new DataSourceOptions { Path = parquet, PromptField = "question", ResponseField = "answer" },
            new DataSourceOptions { Path = csv, TextField = "body", Name = "csv-data" },
            Source(text)));

        var rows = await ReadTrainAsync(output);
        rows.Where(r => r.Source == "in.parquet").SelectMany(r => r.Text).Should().Equal("Q1? A1", "Q2? A2");
        rows.Where(r => r.Source == "csv-data").SelectMany(r => r.Text).Should().Equal("c, one");
        rows.Where(r => r.Source == "in.txt").SelectMany(r => r.Text).Should().Equal("plain one", "plain two");
        stats.Sources.Select(s => s.Format).Should().Equal("parquet", "csv", "text");
    }

    [Fact]
    public async Task An_earlier_prepared_dataset_can_be_replayed()
    {
        using var f = new PrepareFixture();
        var old = Options(Source(f.WriteLines("old.txt", Enumerable.Range(0, 30).Select(i => $"old task line {i}"))));
        var (_, earlier) = await f.RunAsync(old, "earlier");

        var options = Options(Source(f.WriteLines("new.txt", Enumerable.Range(0, 30).Select(i => $"new task line {i}"))));
        options.ReplaySources = [new DataSourceOptions { Path = earlier, Name = "previous" }];
        options.ReplayShare = 0.5;
        var (stats, output) = await f.RunAsync(options, "next");

        stats.Sources.Single(s => s.Name == "previous").Format.Should().Be("preparedDataset");
        var replayed = (await ReadTrainAsync(output)).Where(r => r.Kind == "replay").SelectMany(r => r.Text).ToList();
        replayed.Should().NotBeEmpty().And.OnlyContain(t => t.StartsWith("old task line"));
        stats.AchievedReplayShare.Should().BeApproximately(0.5, 0.01);
    }

    private sealed class QaRow
    {
#pragma warning disable IDE1006 // column names as a user's file would have them
        public string question { get; set; } = "";
        public string answer { get; set; } = "";
#pragma warning restore IDE1006
    }
}
