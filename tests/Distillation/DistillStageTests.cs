using System.Text.Json.Nodes;
using Forgetless.Distill;
using Forgetless.FineTuning;
using Forgetless.Peft;
using Forgetless.Runs;
using Forgetless.Tests.FineTuning;
using Forgetless.Tests.Peft;

namespace Forgetless.Tests.DistillationStage;

[Collection(TorchSerial.Name)]
public sealed class DistillStageTests
{
    private static string CacheFile(string runRoot, JsonObject summary) =>
        Path.Combine(runRoot, ".cache", "teacher", summary["teacher_pass_key"]!.GetValue<string>(), TeacherPass.FileName);

    /// <summary>
    /// The margin stated in docs/distill.md: on the tiny fixture, distillation lowers KL to the teacher on held-out
    /// text while the validation task loss rises by at most 0.5 nats.
    /// </summary>
    [Fact]
    public async Task Distillation_lowers_kl_to_the_teacher_keeps_the_task_and_writes_the_adapter_in_finetunes_format()
    {
        using var f = new DistillFixture();
        var summary = await f.RunAsync();

        double klBefore = summary["kl_to_teacher_heldout_before"]!.GetValue<double>(), klAfter = summary["kl_to_teacher_heldout_after"]!.GetValue<double>();
        klBefore.Should().BeGreaterThan(0);
        klAfter.Should().BeLessThan(klBefore * 0.8, "distillation pulls the student back toward the teacher on general text");
        summary["validation_task_loss_after"]!.GetValue<double>().Should().BeLessThanOrEqualTo(summary["validation_task_loss_before"]!.GetValue<double>() + 0.5);
        summary["teacher_pass_reused"]!.GetValue<bool>().Should().BeFalse();
        summary["teacher_mean_tail_mass"]!.GetValue<double>().Should().BeInRange(0, 1, "it is the teacher's mean probability outside its top-k");

        string output = Path.Combine(f.Root, "runs", "distill");
        AdapterFolder.Describe(Path.Combine(output, "adapter")).PeftType.Should().Be(AdapterFolder.Describe(Path.Combine(f.Root, "runs", "finetune", "adapter")).PeftType);
        File.ReadAllBytes(Path.Combine(output, "adapter", AdapterTensors.WeightsFile))
            .Should().NotEqual(File.ReadAllBytes(Path.Combine(f.Root, "runs", "finetune", "adapter", AdapterTensors.WeightsFile)));
        var manifest = StageManifest.TryRead(output)!;
        manifest.Metrics.Keys.Should().Contain(["kl_to_teacher_heldout_before", "kl_to_teacher_heldout_after", "validation_task_loss_before", "validation_task_loss_after"]);
        File.ReadLines(Path.Combine(output, MetricsLog.FileName)).Last().Should().Contain("kl_to_teacher_heldout_after");
    }

    [Fact]
    public async Task A_cached_teacher_pass_is_reused_and_a_different_teacher_invalidates_it()
    {
        using var f = new DistillFixture();
        var first = await f.RunAsync();
        string cache = CacheFile(Path.Combine(f.Root, "runs"), first);
        var written = File.GetLastWriteTimeUtc(cache);

        var second = await f.RunAsync(forceDistill: true);
        second["teacher_pass_reused"]!.GetValue<bool>().Should().BeTrue("the same teacher and rows need no second pass");
        second["teacher_pass_key"]!.GetValue<string>().Should().Be(first["teacher_pass_key"]!.GetValue<string>());
        File.GetLastWriteTimeUtc(cache).Should().Be(written);

        FineTuneFixture.WriteModel(Path.Combine(f.Root, "teacher2"), seed: 99); // same tokenizer, other weights
        f.WriteDistill(new JsonObject { ["teacher"] = "teacher2" });
        var third = await f.RunAsync();
        third["teacher_pass_reused"]!.GetValue<bool>().Should().BeFalse("another teacher is scored afresh");
        third["teacher_pass_key"]!.GetValue<string>().Should().NotBe(first["teacher_pass_key"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_teacher_with_another_tokenizer_is_refused_with_a_clear_error()
    {
        using var f = new DistillFixture();
        string teacher = Path.Combine(f.Root, "teacher-other");
        FineTuneFixture.WriteModel(teacher, seed: 5);
        var vocab = JsonNode.Parse(File.ReadAllText(Path.Combine(teacher, "vocab.json")))!.AsObject();
        (vocab["a"], vocab["b"]) = (vocab["b"]!.GetValue<int>(), vocab["a"]!.GetValue<int>()); // same size, other ids
        File.WriteAllText(Path.Combine(teacher, "vocab.json"), vocab.ToJsonString());
        f.WriteDistill(new JsonObject { ["teacher"] = "teacher-other" });

        var act = async () => await f.RunAsync();

        (await act.Should().ThrowAsync<UserInputException>()).WithMessage("distill.teacher = *teacher-other: its tokenizer differs from the base model's*");
    }

    [Fact]
    public async Task A_cancelled_distill_run_resumes_to_the_same_bytes()
    {
        using var f = new DistillFixture();
        await f.RunAsync(runRoot: "straight");
        var straight = File.ReadAllBytes(Path.Combine(f.Root, "straight", "distill", "adapter", AdapterTensors.WeightsFile));

        string resumed = await FirstCheckpointCancellation.RunAsync(f.Root, "resumed", "distill", (token, root) => f.RunAsync(token, root));
        var summary = await f.RunAsync(runRoot: resumed);
        summary["resumed_from_step"]!.GetValue<long>().Should().BeGreaterThan(0);
        File.ReadAllBytes(Path.Combine(f.Root, resumed, "distill", "adapter", AdapterTensors.WeightsFile)).Should().Equal(straight);
    }

    [Fact]
    public void Evaluate_and_package_depend_on_distill_when_it_is_on_and_on_finetune_when_it_is_off()
    {
        using var f = new DistillFixture();
        static List<string> Upstream(IStage stage)
        {
            var inputs = new StageInputs();
            stage.DeclareInputs(inputs);
            return inputs.Entries.Where(e => e.Kind == StageInputKind.Upstream).Select(e => e.Source).ToList();
        }

        var on = f.Stages();
        on.Select(s => s.Name).Should().Equal("prepare", "finetune", "distill", "evaluate", "package");
        Upstream(on.Single(s => s.Name == "distill")).Should().Equal("prepare", "finetune");
        Upstream(on.Single(s => s.Name == "evaluate")).Should().Contain("distill").And.NotContain("finetune");
        Upstream(on.Single(s => s.Name == "package")).Should().Contain("distill");

        var off = f.Stages("distill.enabled=false");
        off.Select(s => s.Name).Should().Equal("prepare", "finetune", "evaluate", "package");
        Upstream(off.Single(s => s.Name == "evaluate")).Should().Contain("finetune").And.NotContain("distill");
    }
}
