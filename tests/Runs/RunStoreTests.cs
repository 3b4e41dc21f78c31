using Forgetless.Runs;
using Microsoft.Extensions.Logging.Abstractions;

namespace Forgetless.Tests.Runs;

public sealed class RunStoreTests : IDisposable
{
    private readonly TempDirectory dir = new();
    private readonly string input;

    public RunStoreTests() => input = dir.File("input.txt", "hello");

    public void Dispose() => dir.Dispose();

    private RunStore Store(string version = "1.0.0") => new(Path.Combine(dir.Path, "runs"), version, NullLogger.Instance);

    [Fact]
    public async Task A_completed_stage_publishes_outputs_and_a_manifest_with_hashes()
    {
        var stage = new FakeStage("prepare", input, "a");
        var result = await Store().RunAsync(stage, force: false, CancellationToken.None);

        result.Skipped.Should().BeFalse();
        string folder = Path.Combine(dir.Path, "runs", "prepare");
        File.ReadAllText(Path.Combine(folder, "out.txt")).Should().Be("HELLOa");
        var manifest = StageManifest.TryRead(folder)!;
        manifest.Outputs.Select(o => o.Path).Should().Equal("out.txt", "sub/part.txt");
        manifest.Outputs[0].Sha256.Should().Be(FileHashes.Compute(Path.Combine(folder, "out.txt")));
        manifest.Inputs.Select(i => i.Name).Should().Equal("config", "data");
        manifest.Inputs.Single(i => i.Name == "data").Sha256.Should().Be(FileHashes.Compute(input));
        manifest.Metrics["rows"]!.ToString().Should().Be("3");
        Directory.GetDirectories(Path.Combine(dir.Path, "runs", ".tmp")).Should().BeEmpty();
    }

    [Fact]
    public async Task Fingerprint_is_stable_and_changes_with_any_input()
    {
        var stage = new FakeStage("prepare", input, "a");
        var first = Store().Status(stage).Fingerprint.Value;
        Store().Status(stage).Fingerprint.Value.Should().Be(first);

        stage.Setting = "b";
        Store().Status(stage).Fingerprint.Value.Should().NotBe(first);
        stage.Setting = "a";
        File.WriteAllText(input, "hellO");
        Store().Status(stage).Fingerprint.Value.Should().NotBe(first);
        Store("2.0.0").Status(new FakeStage("prepare", dir.File("input2.txt", "hello"), "a")).Fingerprint.Value.Should().NotBe(first);
        await Task.CompletedTask;
    }

    [Fact]
    public async Task An_up_to_date_stage_is_skipped_and_force_reruns_it()
    {
        var stage = new FakeStage("prepare", input, "a");
        await Store().RunAsync(stage, false, CancellationToken.None);
        var again = await Store().RunAsync(stage, false, CancellationToken.None);

        again.Skipped.Should().BeTrue();
        stage.Runs.Should().Be(1);
        Store().Status(stage).State.Should().Be(StageState.UpToDate);

        var forced = await Store().RunAsync(stage, true, CancellationToken.None);
        forced.Skipped.Should().BeFalse();
        stage.Runs.Should().Be(2);
    }

    [Fact]
    public async Task Status_says_why_a_stage_is_stale()
    {
        var stage = new FakeStage("prepare", input, "a");
        Store().Status(stage).State.Should().Be(StageState.NeverRun);
        await Store().RunAsync(stage, false, CancellationToken.None);

        File.WriteAllText(input, "changed");
        stage.Setting = "b";
        var status = Store().Status(stage);
        status.State.Should().Be(StageState.Stale);
        status.Reasons.Should().Contain(r => r.Contains("input 'data' changed"));
        status.Reasons.Should().Contain("'config' changed (a -> b)");

        Store("9.9.9").Status(stage).Reasons.Should().Contain(r => r.Contains("tool version changed (1.0.0 -> 9.9.9)"));
    }

    [Fact]
    public async Task A_modified_or_missing_output_makes_the_stage_stale()
    {
        var stage = new FakeStage("prepare", input, "a");
        await Store().RunAsync(stage, false, CancellationToken.None);
        string output = Path.Combine(dir.Path, "runs", "prepare", "out.txt");

        File.WriteAllText(output, "tampered!");
        Store().Status(stage).Reasons.Should().Contain("output 'out.txt' was modified");
        File.Delete(output);
        Store().Status(stage).Reasons.Should().Contain("output 'out.txt' is missing");

        (await Store().RunAsync(stage, false, CancellationToken.None)).Skipped.Should().BeFalse();
        File.Exists(output).Should().BeTrue();
    }

    [Fact]
    public async Task A_failing_stage_publishes_nothing_and_keeps_the_previous_outputs()
    {
        var stage = new FakeStage("prepare", input, "a");
        await Store().RunAsync(stage, false, CancellationToken.None);
        string output = Path.Combine(dir.Path, "runs", "prepare", "out.txt");

        stage.Setting = "b";
        stage.During = (_, _) => throw new InvalidDataException("input.txt:3: bad row");
        var act = () => Store().RunAsync(stage, false, CancellationToken.None);

        await act.Should().ThrowAsync<InvalidDataException>();
        File.ReadAllText(output).Should().Be("HELLOa", "the earlier complete outputs stay");
        Store().Status(stage).State.Should().Be(StageState.Stale);
        Directory.GetDirectories(Path.Combine(dir.Path, "runs", ".tmp")).Should().BeEmpty();
    }

    [Fact]
    public async Task A_cancelled_stage_publishes_nothing_but_keeps_its_resumable_work_folder()
    {
        var stage = new FakeStage("finetune", input, "a");
        string? work = null;
        using var cts = new CancellationTokenSource();
        stage.During = async (run, ct) =>
        {
            work = run.WorkDirectory;
            File.WriteAllText(Path.Combine(run.WorkDirectory, "checkpoint.bin"), "state");
            await cts.CancelAsync();
            ct.ThrowIfCancellationRequested();
        };

        var act = () => Store().RunAsync(stage, false, cts.Token);

        await act.Should().ThrowAsync<OperationCanceledException>();
        Directory.Exists(Path.Combine(dir.Path, "runs", "finetune")).Should().BeFalse();
        File.Exists(Path.Combine(work!, "checkpoint.bin")).Should().BeTrue("a rerun with the same inputs resumes from it");

        stage.During = (run, _) =>
        {
            run.WorkDirectory.Should().Be(work);
            return Task.CompletedTask;
        };
        await Store().RunAsync(stage, false, CancellationToken.None);
        Directory.Exists(work).Should().BeFalse("the work folder goes once the stage completed");
    }

    [Fact]
    public async Task Leftovers_of_a_killed_run_are_never_trusted_and_are_swept()
    {
        // What SIGKILL leaves behind: a half-written temp folder (even with a manifest in it) and scratch.
        var stage = new FakeStage("prepare", input, "a");
        string runs = Path.Combine(dir.Path, "runs");
        string temp = Path.Combine(runs, ".tmp", "prepare-deadbeef");
        Directory.CreateDirectory(temp);
        File.WriteAllText(Path.Combine(temp, "out.txt"), "HALF");
        var store = Store();

        store.Status(stage).State.Should().Be(StageState.NeverRun);
        await store.RunAsync(stage, false, CancellationToken.None);

        Directory.Exists(temp).Should().BeFalse();
        File.ReadAllText(Path.Combine(runs, "prepare", "out.txt")).Should().Be("HELLOa");
    }

    [Fact]
    public async Task A_damaged_manifest_means_the_stage_is_rerun()
    {
        var stage = new FakeStage("prepare", input, "a");
        await Store().RunAsync(stage, false, CancellationToken.None);
        File.WriteAllText(Path.Combine(dir.Path, "runs", "prepare", StageManifest.FileName), "{ not json");

        // Issue 20: a damaged record is not "never run" — status says what happened, and the stage reruns.
        var status = Store().Status(stage);
        status.State.Should().Be(StageState.Stale);
        status.Reasons.Should().ContainSingle().Which.Should().Contain($"{StageManifest.FileName} is damaged");
        (await Store().RunAsync(stage, false, CancellationToken.None)).Skipped.Should().BeFalse();
        Store().Status(stage).State.Should().Be(StageState.UpToDate);
    }

    [Fact]
    public async Task Downstream_stages_follow_the_outputs_of_upstream_stages()
    {
        var prepare = new FakeStage("prepare", input, "a");
        var finetune = new FakeStage("finetune", input, "x", upstream: "prepare");
        var stages = new List<IStage> { prepare, finetune };
        var store = Store();

        PipelineStatus.Plan(store, stages, "finetune").Select(s => s.Name).Should().Equal("prepare", "finetune");
        await store.RunAsync(prepare, false, CancellationToken.None);
        await store.RunAsync(finetune, false, CancellationToken.None);
        PipelineStatus.Of(store, stages).Should().OnlyContain(s => s.IsUpToDate);
        PipelineStatus.Plan(store, stages, "finetune").Select(s => s.Name).Should().Equal("finetune");

        prepare.Setting = "b";
        var statuses = PipelineStatus.Of(store, stages);
        statuses[1].Reasons.Should().Contain("upstream stage 'prepare' is not up to date");
        PipelineStatus.Plan(store, stages, "finetune").Select(s => s.Name).Should().Equal("prepare", "finetune");

        await store.RunAsync(prepare, false, CancellationToken.None);
        store.Status(finetune).Reasons.Should().Contain("upstream stage 'prepare' has new outputs");
    }

    [Fact]
    public async Task Rerunning_upstream_with_identical_outputs_keeps_downstream_up_to_date()
    {
        var prepare = new FakeStage("prepare", input, "a");
        var finetune = new FakeStage("finetune", input, "x", upstream: "prepare");
        var store = Store();
        await store.RunAsync(prepare, false, CancellationToken.None);
        await store.RunAsync(finetune, false, CancellationToken.None);

        await store.RunAsync(prepare, force: true, CancellationToken.None);

        store.Status(finetune).State.Should().Be(StageState.UpToDate);
    }

    [Fact]
    public async Task Clean_removes_outputs_and_work()
    {
        var stage = new FakeStage("prepare", input, "a");
        await Store().RunAsync(stage, false, CancellationToken.None);
        Store().Clean("prepare");
        Store().Status(stage).State.Should().Be(StageState.NeverRun);
    }
}
