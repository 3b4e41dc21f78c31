using System.Text.Json.Nodes;
using Forgetless.FineTuning;
using Forgetless.Runs;
using Forgetless.Tests.FineTuning;

namespace Forgetless.Tests.Cli;

/// <summary>
/// Issue 20, item 3: one writer per run root, with real forgetless processes. Without the lock two finetune runs
/// shared one checkpoint folder and published a metrics.jsonl with both processes' rows, and of two `prepare --force`
/// runs with different settings one result was silently lost.
/// </summary>
public sealed class RunRootLockTests : IDisposable
{
    private readonly FineTuneFixture f = new();

    public void Dispose() => f.Dispose();

    private static string[] Args(params string[] args) => [args[0], "--set", "run.threads=1", .. args[1..]];

    /// <summary>The published stage matches its manifest: every output listed, with its hash, and nothing else.</summary>
    private static void ShouldBeOneCompleteRun(string stageDirectory)
    {
        var manifest = StageManifest.TryRead(stageDirectory);
        manifest.Should().NotBeNull();
        foreach (var output in manifest!.Outputs)
            FileHashes.Compute(Path.Combine(stageDirectory, output.Path)).Should().Be(output.Sha256, $"{output.Path} is the file the manifest records");
        Directory.EnumerateFiles(stageDirectory, "*", SearchOption.AllDirectories).Count().Should().Be(manifest.Outputs.Count + 1);
    }

    private static async Task WaitUntil(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (!condition())
        {
            DateTime.UtcNow.Should().BeBefore(deadline, what);
            await Task.Delay(25);
        }
    }

    [Fact]
    public async Task A_second_writer_stops_with_the_holder_named_or_waits_for_it_with_wait_and_readers_need_no_lock()
    {
        // This test process holds the lock, as a long-running writer would.
        var held = RunRootLock.TryAcquire(f.RunRoot, "test holder")!;
        held.Should().NotBeNull();

        var refused = await ForgetlessProcess.RunAsync(f.Root, Args("prepare"));
        refused.ExitCode.Should().Be(1, refused.ToString());
        refused.Output.Should().Contain("is in use by another writer").And.Contain($"process {Environment.ProcessId} (test holder)").And.Contain("--wait");
        refused.HasStackTrace.Should().BeFalse();
        Directory.Exists(Path.Combine(f.RunRoot, "prepare")).Should().BeFalse("a refused writer writes nothing");
        (await ForgetlessProcess.RunAsync(f.Root, "status")).ExitCode.Should().Be(0, "status reads without the lock");

        var waiting = ForgetlessProcess.Start(f.Root, Args("prepare", "--wait"));
        var stderr = new System.Text.StringBuilder();
        var reading = Task.Run(async () =>
        {
            while (await waiting.StandardError.ReadLineAsync() is { } line) lock (stderr) stderr.AppendLine(line);
        });
        var stdout = waiting.StandardOutput.ReadToEndAsync();
        await WaitUntil(() => { lock (stderr) return stderr.ToString().Contains("waiting until it is free"); }, "the waiting writer says that it waits");
        await Task.Delay(500);
        waiting.HasExited.Should().BeFalse("it waits while the lock is held");
        Directory.Exists(Path.Combine(f.RunRoot, "prepare")).Should().BeFalse();

        held.Dispose();
        await waiting.WaitForExitAsync();
        await reading;
        waiting.ExitCode.Should().Be(0, stderr + await stdout);
        ShouldBeOneCompleteRun(Path.Combine(f.RunRoot, "prepare"));
    }

    [Fact]
    public async Task Two_finetune_runs_started_together_run_one_after_the_other_and_publish_one_runs_metrics()
    {
        (await ForgetlessProcess.RunAsync(f.Root, Args("prepare"))).ExitCode.Should().Be(0);
        string[] finetune = Args("finetune", "--wait", "--set", "finetune.steps=40", "--set", "finetune.logEvery=1");
        var first = ForgetlessProcess.Start(f.Root, finetune);
        var second = ForgetlessProcess.Start(f.Root, finetune);
        var results = await Task.WhenAll(ForgetlessProcess.Finish(first), ForgetlessProcess.Finish(second));

        foreach (var r in results) r.ExitCode.Should().Be(0, r.ToString());
        results.Count(r => r.Output.Contains("finetune: completed")).Should().Be(1, "the second one finds the stage up to date after the first");
        results.Count(r => r.Output.Contains("finetune: up to date, skipped")).Should().Be(1);
        string output = Path.Combine(f.RunRoot, "finetune");
        ShouldBeOneCompleteRun(output);
        var steps = File.ReadAllLines(Path.Combine(output, MetricsLog.FileName)).Select(l => JsonNode.Parse(l)!["step"]!.GetValue<long>()).ToList();
        steps.Should().Equal(Enumerable.Range(0, 41).Select(i => (long)i), "one run's rows, each step once");
        (await ForgetlessProcess.RunAsync(f.Root, Args("status", "--set", "finetune.steps=40"))).Stdout.Should().Contain("finetune   up to date");
    }

    [Fact]
    public async Task Two_prepare_force_runs_with_different_settings_both_complete_in_turn_and_the_last_one_is_published()
    {
        var a = ForgetlessProcess.Start(f.Root, Args("prepare", "--force", "--wait", "--set", "prepare.seqLen=32"));
        var b = ForgetlessProcess.Start(f.Root, Args("prepare", "--force", "--wait", "--set", "prepare.seqLen=48"));
        var results = await Task.WhenAll(ForgetlessProcess.Finish(a), ForgetlessProcess.Finish(b));

        foreach (var r in results) r.ExitCode.Should().Be(0, r.ToString());
        results.Count(r => r.Output.Contains("prepare: completed")).Should().Be(2, "--force reruns; the lock makes the runs take turns");
        string output = Path.Combine(f.RunRoot, "prepare");
        ShouldBeOneCompleteRun(output);
        // The published outputs are one of the two runs, and status agrees with exactly that one.
        var upToDate = new List<string>();
        foreach (var seqLen in new[] { "32", "48" })
            if ((await ForgetlessProcess.RunAsync(f.Root, Args("status", "--set", "prepare.seqLen=" + seqLen))).Stdout.Contains("prepare    up to date"))
                upToDate.Add(seqLen);
        upToDate.Should().ContainSingle();
        Directory.GetDirectories(Path.Combine(f.RunRoot, ".tmp")).Should().BeEmpty("nothing half-written is left");
    }
}
