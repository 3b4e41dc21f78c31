using System.Text.Json.Nodes;
using Forgetless.Runs;
using Forgetless.Study;

namespace Forgetless.Tests.Study;

/// <summary>A whole study on the tiny model: equal learning, shards merged, a killed cell resumed, a changed cell rerun alone.</summary>
public sealed class StudyRunTests
{
    [Fact]
    public async Task A_study_compares_the_cell_that_reached_the_target_and_shows_the_one_that_missed()
    {
        using var f = new StudyFixture();
        var runner = f.Runner();
        await runner.RunAsync(runner.Cells, CancellationToken.None);
        var report = runner.Report([runner.Root], verify: true);
        report.WriteAll(runner.ReportDirectory);

        var fast = Summary(runner.Root, "fast");
        var slow = Summary(runner.Root, "slow");
        // Read from the cells' own summary.json, not from the study code.
        Assert.Equal("target_validation_loss", fast["stop_reason"]!.GetValue<string>());
        Assert.True(fast["best_validation_task_loss"]!.GetValue<double>() <= StudyFixture.Target);
        Assert.True(fast["steps"]!.GetValue<long>() < 12);
        Assert.Equal("steps", slow["stop_reason"]!.GetValue<string>());
        Assert.Equal(12, slow["steps"]!.GetValue<long>());
        Assert.True(slow["best_validation_task_loss"]!.GetValue<double>() > StudyFixture.Target);

        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(runner.ReportDirectory, StudyReport.JsonFile)))!;
        var cells = json["cells"]!.AsArray();
        Assert.Equal(["fast", "slow"], cells.Select(c => c!["name"]!.GetValue<string>()));
        Assert.Equal("reached", cells[0]!["status"]!.GetValue<string>());
        Assert.Equal(fast["steps"]!.GetValue<long>(), cells[0]!["steps"]!.GetValue<long>());
        Assert.Equal(fast["tokens"]!.GetValue<long>(), cells[0]!["tokens"]!.GetValue<long>());
        Assert.Equal("missed", cells[1]!["status"]!.GetValue<string>());
        Assert.Equal(["fast"], json["learning_frontier"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal("fast", json["recommended"]!.GetValue<string>());

        // The forgetting published for a cell is its evaluate stage's number, scaled to percent of the base value.
        var evaluate = JsonNode.Parse(File.ReadAllText(Path.Combine(runner.Root, "fast", "evaluate", "results.json")))!;
        var bpb = evaluate["comparison"]!["heldout"]!["metrics"]!["bits_per_byte"]!;
        double expected = bpb["forgetting"]!.GetValue<double>() * 100 / Math.Abs(bpb["base"]!.GetValue<double>());
        Assert.Equal(expected, cells[0]!["forgetting"]!["heldout"]!["value"]!.GetValue<double>(), 3);

        // Cells run in this process (not each in its own, as `forgetless study` runs them) have no peak of their own.
        Assert.All(report.Timings, t =>
        {
            Assert.Null(t.PeakRssBytes);
            Assert.Contains("did not run in a process of the cell's own", t.PeakUnknown);
        });
        Assert.Contains("peak MB n/a for fast, slow: finetune did not run in a process of the cell's own", report.Markdown());
        // A record that names another run of the stage than the one in place is not taken for it.
        string fastRoot = Path.Combine(runner.Root, "fast");
        CellMemory.Record(fastRoot, "finetune", 123_000_000);
        Assert.Equal(123_000_000, CellMemory.Read(fastRoot).Bytes);
        var record = JsonNode.Parse(File.ReadAllText(Path.Combine(fastRoot, CellMemory.FileName)))!;
        record["stages"]!["finetune"]!["started"] = "2000-01-01T00:00:00.0000000+00:00";
        File.WriteAllText(Path.Combine(fastRoot, CellMemory.FileName), record.ToJsonString());
        Assert.Null(CellMemory.Read(fastRoot).Bytes);

        var junit = System.Xml.Linq.XDocument.Load(Path.Combine(runner.ReportDirectory, StudyReport.JUnitFile));
        var cases = junit.Descendants("testcase").ToList();
        Assert.Equal(2, cases.Count);
        Assert.Null(cases[0].Element("failure"));
        Assert.Contains("did not reach", cases[1].Element("failure")!.Attribute("message")!.Value);
        Assert.True(new FileInfo(Path.Combine(runner.ReportDirectory, StudyReport.PngFile)).Length > 1000);
        Assert.StartsWith("<svg", File.ReadAllText(Path.Combine(runner.ReportDirectory, StudyReport.SvgFile)));

        // Rerunning runs nothing and writes the same study.json.
        var before = Started(runner.Root);
        await runner.RunAsync(runner.Cells, CancellationToken.None);
        Assert.Equal(before, Started(runner.Root));
        Assert.Equal(report.Json().ToJsonString(), runner.Report([runner.Root], verify: true).Json().ToJsonString());

        // A changed setting of one cell reruns that cell's finetune and evaluate, and nothing of the other cell.
        f.WriteStudy("0.0002", fastRank: "2");
        var changed = f.Runner();
        await changed.RunAsync(changed.Cells, CancellationToken.None);
        var after = Started(runner.Root);
        Assert.Equal(before["slow/prepare"], after["slow/prepare"]);
        Assert.Equal(before["slow/finetune"], after["slow/finetune"]);
        Assert.Equal(before["slow/evaluate"], after["slow/evaluate"]);
        Assert.Equal(before["fast/prepare"], after["fast/prepare"]);
        Assert.NotEqual(before["fast/finetune"], after["fast/finetune"]);
        Assert.NotEqual(before["fast/evaluate"], after["fast/evaluate"]);
    }

    [Fact]
    public async Task Two_shards_merged_give_the_study_json_of_one_run_and_a_killed_cell_resumes()
    {
        using var f = new StudyFixture();
        var whole = f.Runner("whole");
        await whole.RunAsync(whole.Cells, CancellationToken.None);
        whole.Report([whole.Root], verify: false).WriteAll(whole.ReportDirectory);

        var first = f.Runner("shard1");
        var second = f.Runner("shard2");
        Assert.Equal(["fast"], StudyCells.Shard(first.Cells, 1, 2).Select(c => c.Name));
        Assert.Equal(["slow"], StudyCells.Shard(first.Cells, 2, 2).Select(c => c.Name));
        await first.RunAsync(StudyCells.Shard(first.Cells, 1, 2), CancellationToken.None);

        // Shard 2 is killed as soon as its cell wrote a finetune checkpoint, then run again: it resumes from there.
        using (var cts = new CancellationTokenSource())
        {
            var watcher = Task.Run(async () =>
            {
                string work = Path.Combine(second.Root, "slow", ".work");
                while (!cts.IsCancellationRequested)
                {
                    if (Directory.Exists(work) && Directory.EnumerateDirectories(work, "finetune-*")
                            .Any(d => File.Exists(Path.Combine(d, Forgetless.FineTuning.Trainer.CheckpointFile))))
                        cts.Cancel();
                    await Task.Delay(2);
                }
            });
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => second.RunAsync(StudyCells.Shard(second.Cells, 2, 2), cts.Token));
            await watcher;
        }
        Assert.False(Directory.Exists(Path.Combine(second.Root, "slow", "finetune")));
        await second.RunAsync(StudyCells.Shard(second.Cells, 2, 2), CancellationToken.None);
        Assert.True(Summary(second.Root, "slow")["resumed_from_step"]!.GetValue<long>() > 0);

        string merged = Path.Combine(f.Root, "merged");
        f.Runner("elsewhere").Report([first.Root, second.Root], verify: true).WriteAll(merged);
        Assert.Equal(File.ReadAllBytes(Path.Combine(whole.ReportDirectory, StudyReport.JsonFile)), File.ReadAllBytes(Path.Combine(merged, StudyReport.JsonFile)));

        // A shard's cell that no longer matches the study file is refused by merge, naming the cell.
        f.WriteStudy("0.0003");
        var error = Assert.Throws<UserInputException>(() => f.Runner("elsewhere").Report([first.Root, second.Root], verify: true));
        Assert.Contains("cell 'slow'", error.Message);
    }

    private static JsonObject Summary(string studyRoot, string cell) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(studyRoot, cell, "finetune", "summary.json")))!.AsObject();

    /// <summary>When each stage of each cell last completed ("cell/stage" → the manifest's start time).</summary>
    private static Dictionary<string, DateTimeOffset> Started(string studyRoot) =>
        new[] { "fast", "slow" }.SelectMany(cell => new[] { "prepare", "finetune", "evaluate" }
                .Select(stage => (Key: $"{cell}/{stage}", Manifest: StageManifest.TryRead(Path.Combine(studyRoot, cell, stage))!)))
            .ToDictionary(x => x.Key, x => x.Manifest.Started);
}
