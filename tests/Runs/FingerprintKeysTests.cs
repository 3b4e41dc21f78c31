using Forgetless.Runs;
using Forgetless.Stages;
using Forgetless.Tests.FineTuning;
using Microsoft.Extensions.Logging.Abstractions;

namespace Forgetless.Tests.Runs;

/// <summary>Issue 20, item 6: keys that cannot change a stage's result (how often it logs or checkpoints) leave its fingerprint.</summary>
public sealed class FingerprintKeysTests : IDisposable
{
    private readonly FineTuneFixture f = new();

    public void Dispose() => f.Dispose();

    private string FingerprintOf(string stage, params string[] settings)
    {
        var config = f.LoadConfig(["distill.enabled=true", .. settings]);
        var store = new RunStore(f.RunRoot, "test", NullLogger.Instance);
        return store.Status(StageRegistry.Build(new StageContext(config)).Single(s => s.Name == stage)).Fingerprint.Value;
    }

    [Theory]
    [InlineData("finetune", "finetune.logEvery=7")]
    [InlineData("finetune", "finetune.checkpointEvery=7")]
    [InlineData("distill", "distill.logEvery=3")]
    [InlineData("distill", "distill.checkpointEvery=3")]
    public void Logging_and_checkpoint_intervals_do_not_make_a_stage_stale(string stage, string setting) =>
        FingerprintOf(stage, setting).Should().Be(FingerprintOf(stage));

    [Theory]
    [InlineData("finetune", "finetune.learningRate=0.5")]
    [InlineData("finetune", "finetune.evalEvery=7")]
    [InlineData("distill", "distill.steps=3")]
    public void Keys_that_change_the_result_still_do(string stage, string setting) =>
        FingerprintOf(stage, setting).Should().NotBe(FingerprintOf(stage));
}
