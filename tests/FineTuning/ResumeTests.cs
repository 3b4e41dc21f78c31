using System.Diagnostics;
using System.Text.Json.Nodes;
using Forgetless.FineTuning;
using Forgetless.Model;
using Forgetless.Model.Safetensors;
using Forgetless.Peft;
using Forgetless.Tests.Peft;
using Forgetless.Training;
using Forgetless.Training.Terms;
using Microsoft.Extensions.Logging.Abstractions;
using static TorchSharp.torch;

namespace Forgetless.Tests.FineTuning;

[Collection(TorchSerial.Name)]
public sealed class ResumeTests
{
    private static byte[] AdapterBytes(string outputDirectory) =>
        File.ReadAllBytes(Path.Combine(outputDirectory, "adapter", AdapterTensors.WeightsFile));

    [Theory]
    [InlineData("lora-dropout", new[] { "finetune.lora.dropout=0.2" })]
    [InlineData("qlora", new[] { "finetune.method=qlora", "finetune.lora.dropout=0.1" })]
    [InlineData("full+ewc+kd", new[] { "finetune.method=full", "finetune.learningRate=0.005", "finetune.regularizers=[ewc,kd,l2sp]" })]
    [InlineData("ia3+si", new[] { "finetune.method=ia3", "finetune.learningRate=0.2", "finetune.regularizers=[si]", "finetune.si.pathSteps=4" })]
    public async Task A_cancelled_run_resumes_to_the_same_bytes_and_two_runs_with_one_seed_agree(string name, string[] overrides)
    {
        using var f = new FineTuneFixture();
        // Long enough that the cancellation lands well before the end (the first checkpoint is at step 3).
        overrides = [.. overrides, "finetune.steps=40", "finetune.evalEvery=10", "finetune.logEvery=5"];
        await f.RunAsync(runRoot: "straight", overrides: overrides);
        await f.RunAsync(runRoot: "again", overrides: overrides);
        var straight = AdapterBytes(Path.Combine(f.Root, "straight", "finetune"));
        AdapterBytes(Path.Combine(f.Root, "again", "finetune")).Should().Equal(straight, $"{name}: same inputs and seed give the same bytes");

        // Cancel as soon as the first checkpoint exists, then rerun: it resumes and ends with the same bytes.
        string resumed = await FirstCheckpointCancellation.RunAsync(f.Root, "resumed", "finetune", (token, root) => f.RunAsync(token, root, overrides));
        var summary = await f.RunAsync(runRoot: resumed, overrides: overrides);
        summary["resumed_from_step"]!.GetValue<long>().Should().BeGreaterThan(0);
        AdapterBytes(Path.Combine(f.Root, resumed, "finetune")).Should().Equal(straight, $"{name}: a resumed run ends with the bytes of an uninterrupted one");
        File.ReadAllLines(Path.Combine(f.Root, resumed, "finetune", MetricsLog.FileName)).Select(l => JsonNode.Parse(l)!["step"]!.GetValue<long>())
            .Should().Equal(File.ReadAllLines(Path.Combine(f.Root, "straight", "finetune", MetricsLog.FileName)).Select(l => JsonNode.Parse(l)!["step"]!.GetValue<long>()));
    }

    [Fact]
    public void A_nan_loss_stops_the_run_with_a_clear_error_and_keeps_the_last_good_checkpoint()
    {
        using var f = new FineTuneFixture();
        var options = f.Options("finetune.steps=8", "finetune.checkpointEvery=2");
        using var tuned = options.Apply(ModelFolder.LoadModel(f.ModelDirectory), seed: 3);
        var rows = Enumerable.Range(0, 8).Select(i => new PreparedRow(
            Enumerable.Range(0, 12).Select(t => (i + t) % 20).ToArray(), Enumerable.Repeat(true, 12).ToArray(), 12, "task")).ToList();
        TrainingTerm[] terms = [new TaskLoss()];
        var work = Directory.CreateDirectory(Path.Combine(f.Root, "work")).FullName;
        var trainer = new Trainer(options.Training, tuned, new PreparedBatches(rows, 24, 1), new LossProbe(rows[..2], rows[..2]), terms, NullLogger.Instance)
        {
            AfterStep = step =>
            {
                if (step != 5) return;
                using var _ = no_grad();
                tuned.Trainable.First(t => t.name.EndsWith("lora_B.weight")).parameter.fill_(Scalars.Of(double.NaN));
            },
        };

        var act = () => trainer.Run(work, CancellationToken.None);

        act.Should().Throw<NonFiniteLossException>().WithMessage("*NaN or infinite at step 6*last good checkpoint*");
        var checkpoint = SafetensorsFile.Open(Path.Combine(work, Trainer.CheckpointFile));
        checkpoint.Metadata["step"].Should().Be("4");
        var tensors = checkpoint.ReadAll();
        tensors.Values.Should().OnlyContain(t => Gradients.IsFinite(t) || t.dtype != ScalarType.Float32);
        foreach (var t in tensors.Values) t.Dispose();
    }

    [Fact]
    public async Task A_killed_process_leaves_a_resumable_state_that_ends_with_the_bytes_of_an_uninterrupted_run()
    {
        using var f = new FineTuneFixture();
        f.WriteConfig(new JsonObject { ["steps"] = 60, ["checkpointEvery"] = 5, ["evalEvery"] = 20, ["lora"] = new JsonObject { ["r"] = 4, ["alpha"] = 8, ["dropout"] = 0.1, ["targetModules"] = new JsonArray("q_proj", "v_proj") } });
        string dll = Path.Combine(AppContext.BaseDirectory, "forgetless.dll");
        File.Exists(dll).Should().BeTrue($"the stages project is referenced, so {dll} is built next to the tests");

        Process Start(string runRoot) => Process.Start(new ProcessStartInfo("dotnet")
        {
            ArgumentList = { dll, "finetune", "--config", f.ConfigPath, "--set", "run.root=" + runRoot, "--set", "run.threads=1" },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = f.Root,
        })!;
        async Task<string> Finish(Process p)
        {
            var output = p.StandardOutput.ReadToEndAsync();
            var error = p.StandardError.ReadToEndAsync();
            await p.WaitForExitAsync();
            var text = await output + await error;
            p.ExitCode.Should().Be(0, text);
            return text;
        }

        // The uninterrupted reference runs in this process (one torch thread, as the children are told to use).
        await f.RunAsync(runRoot: "straight");

        var victim = Start("killed");
        _ = victim.StandardOutput.ReadToEndAsync();
        _ = victim.StandardError.ReadToEndAsync();
        var work = Path.Combine(f.Root, "killed", ".work");
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (!(Directory.Exists(work) && Directory.EnumerateFiles(work, Trainer.CheckpointFile, SearchOption.AllDirectories).Any()))
        {
            victim.HasExited.Should().BeFalse("the run should still be training when its first checkpoint appears");
            DateTime.UtcNow.Should().BeBefore(deadline);
            await Task.Delay(20);
        }
        victim.Kill(entireProcessTree: true); // SIGKILL: no chance to save anything
        await victim.WaitForExitAsync();
        Directory.Exists(Path.Combine(f.Root, "killed", "finetune")).Should().BeFalse("nothing is published by a killed run");

        var log = await Finish(Start("killed"));
        log.Should().MatchRegex(@"resuming from step [1-9]");
        AdapterBytes(Path.Combine(f.Root, "killed", "finetune")).Should().Equal(AdapterBytes(Path.Combine(f.Root, "straight", "finetune")));
    }
}
