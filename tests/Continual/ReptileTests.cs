using Forgetless.Continual;
using Forgetless.FineTuning;
using Forgetless.Runs;
using Forgetless.Stages;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Forgetless.Tests.Continual;

[Collection(Forgetless.Tests.Peft.TorchSerial.Name)]
public sealed class ReptileTests
{
    private static ReptileResult Run(Forgetless.Tests.FineTuning.FineTuneFixture f, string work, ILogger logger, CancellationToken cancellationToken)
    {
        var config = f.LoadConfig("continual.reptile.metaIterations=3", "continual.reptile.innerSteps=2", "continual.reptile.fineTuneSteps=4",
            "continual.reptile.tokensPerBatch=256", "continual.suiteLimit=12");
        var options = config.Section<ContinualOptions>("continual");
        var pipeline = new StageContext(config);
        var finetune = config.Section<FineTuneOptions>("finetune");
        var setup = new ReptileSetup(() => StageContext.LoadWithTokenizer(pipeline.BaseModel, "test"), finetune, pipeline.Resolve,
            pipeline.Resolve(finetune.Heldout), 64, finetune.LearningRate, pipeline.Seed);
        return new ReptileExperiment(setup, options, logger, work).Run(cancellationToken);
    }

    [Fact]
    public void Both_initialisations_are_fine_tuned_on_the_held_out_task_and_an_interrupted_run_resumes_to_the_same_numbers()
    {
        using var f = ContinualRunTests.Sequence();
        var whole = Run(f, Path.Combine(f.Root, "whole"), NullLogger.Instance, CancellationToken.None);
        whole.HeldOutTask.Should().Be("last");
        whole.MetaTasks.Should().Equal("first");
        whole.FromMeta.Curve.Should().NotBeEmpty();
        whole.FromMeta.Curve[0].Step.Should().Be(0);
        // The meta-learned start differs from the fresh one, so their curves start apart.
        whole.FromMeta.Curve[0].ValidationLoss.Should().NotBe(whole.FromFresh.Curve[0].ValidationLoss);

        // Interrupted after the first meta-iteration, then run again: the same numbers as the run that was not.
        using var cancel = new CancellationTokenSource();
        string work = Path.Combine(f.Root, "interrupted");
        var interrupt = () => Run(f, work, new CancelAfter("meta-iteration 1/", cancel), cancel.Token);
        interrupt.Should().Throw<OperationCanceledException>();
        File.Exists(Path.Combine(work, ReptileExperiment.StateFile)).Should().BeTrue();
        var resumed = Run(f, work, NullLogger.Instance, CancellationToken.None);
        OutputJson.Serialize(resumed).Should().Be(OutputJson.Serialize(whole));
    }

    /// <summary>Cancels the run when a log message contains <paramref name="text"/> (an interruption at a known point).</summary>
    private sealed class CancelAfter(string text, CancellationTokenSource source) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (formatter(state, exception).Contains(text, StringComparison.Ordinal)) source.Cancel();
        }
    }
}
