using Forgetless.Data;
using Forgetless.Runs;
using Forgetless.Stages.Prepare;
using Microsoft.Extensions.Logging.Abstractions;
using static Forgetless.Tests.Data.PrepareFixture;

namespace Forgetless.Tests.Data;

public sealed class PrepareStageTests
{
    [Fact]
    public void DeclareInputs_names_every_source_suite_the_options_and_the_tokenizer()
    {
        using var f = new PrepareFixture();
        var options = Options(Instruction("data/task.jsonl"), Source("data/more.csv"));
        options.ReplaySources = [Source("data/brown.txt"), new DataSourceOptions { Path = "runs/prepare-old", Format = SourceFormat.PreparedDataset }];
        options.Decontaminate.Suites = ["suites/lambada.jsonl"];
        var stage = new PrepareStage(StageContexts.For(f.Root, "run.baseModel=tok"), options, _ => new CharTokenizer());
        var inputs = new StageInputs();

        stage.DeclareInputs(inputs);

        inputs.Entries.Select(e => (e.Name, e.Kind, e.Source)).Should().BeEquivalentTo(new[]
        {
            ("config.prepare", StageInputKind.Value, options.ToJson()),
            ("run.baseModel", StageInputKind.Directory, Path.Combine(f.Root, "tok")),
            ("prepare.taskSources[0]", StageInputKind.File, Path.Combine(f.Root, "data/task.jsonl")),
            ("prepare.taskSources[1]", StageInputKind.File, Path.Combine(f.Root, "data/more.csv")),
            ("prepare.replaySources[0]", StageInputKind.File, Path.Combine(f.Root, "data/brown.txt")),
            ("prepare.replaySources[1]", StageInputKind.File, Path.Combine(f.Root, "runs/prepare-old/train.parquet")),
            ("prepare.decontaminate.suites[0]", StageInputKind.File, Path.Combine(f.Root, "suites/lambada.jsonl")),
        });
        stage.Name.Should().Be("prepare");
    }

    [Fact]
    public async Task RunAsync_writes_the_outputs_and_reports_metrics()
    {
        using var f = new PrepareFixture();
        f.Write("tok/vocab.txt", "a b c");
        var options = Options(Source(f.WriteLines("t.txt", ["one", "two"])));
        var stage = new PrepareStage(StageContexts.For(f.Root, "run.baseModel=tok"), options, _ => new CharTokenizer());
        var run = new StageRun
        {
            StageName = "prepare",
            OutputDirectory = Path.Combine(f.Root, "tmp-out"),
            WorkDirectory = Path.Combine(f.Root, "work"),
            Fingerprint = "f",
            Logger = NullLogger.Instance,
            ResolveUpstream = _ => throw new InvalidOperationException(),
        };

        var outcome = await stage.RunAsync(run, CancellationToken.None);

        outcome.Failure.Should().BeNull();
        outcome.Metrics["train_tokens"].Should().Be(8L);
        var reader = await Parquet.ParquetReader.CreateAsync(Path.Combine(run.OutputDirectory, PreparedDataset.TrainFileName));
        await using (reader)
            reader.CustomMetadata["forgetless.tokenizer.sha256"].Should().Be(PrepareStage.HashTokenizer(Path.Combine(f.Root, "tok"))).And.HaveLength(64);
    }
}

public sealed class PrepareCancellationTests
{
    [Fact]
    public async Task A_cancelled_run_throws_and_leaves_no_output()
    {
        using var f = new PrepareFixture();
        var options = Options(Source(f.WriteLines("t.txt", Enumerable.Range(0, 2000).Select(i => $"line {i}"))));
        var engine = new PrepareEngine(options, new CharTokenizer(), "h");
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();

        var act = () => engine.RunAsync(f.Root, Path.Combine(f.Root, "out"), Path.Combine(f.Root, "work"), cancelled.Token);

        await act.Should().ThrowAsync<OperationCanceledException>();
        Directory.Exists(Path.Combine(f.Root, "out")).Should().BeFalse();
    }
}
