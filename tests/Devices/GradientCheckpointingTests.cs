using FluentAssertions;
using Forgetless.FineTuning;
using Forgetless.Model;
using Forgetless.Peft;
using Forgetless.Tests.FineTuning;
using Forgetless.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Forgetless.Tests.Devices;

/// <summary>
/// Gradient checkpointing recomputes each decoder layer in backward instead of keeping its activations: the
/// gradients must be the ones of the plain backward pass — for trained base weights, for adapters over a frozen base
/// (whose layers get an input that does not require grad), and with dropout, whose draws must be replayed.
/// </summary>
[Collection(Forgetless.Tests.Peft.TorchSerial.Name)]
public sealed class GradientCheckpointingTests : IDisposable
{
    private readonly FineTuneFixture fixture = new();

    [Theory]
    [InlineData("full", 0.0)]
    [InlineData("lora", 0.0)]
    [InlineData("lora", 0.3)]
    [InlineData("qlora", 0.3)]
    [InlineData("prefix", 0.0)]
    public void Gradients_with_checkpointing_equal_the_plain_ones(string method, double dropout)
    {
        var plain = Gradients(method, dropout, checkpointing: false);
        var recomputed = Gradients(method, dropout, checkpointing: true);
        recomputed.Keys.Should().BeEquivalentTo(plain.Keys);
        plain.Values.Should().Contain(g => g.Any(v => v != 0), "the comparison is about real gradients");
        foreach (var (name, expected) in plain)
        {
            var actual = recomputed[name];
            for (int i = 0; i < expected.Length; i++)
                actual[i].Should().BeApproximately(expected[i], 1e-6f + 1e-5f * Math.Abs(expected[i]), $"{name}[{i}]");
        }
    }

    /// <summary>Two micro-batches' gradients of the task loss (the second sees the dropout generators where the first left them).</summary>
    private Dictionary<string, float[]> Gradients(string method, double dropout, bool checkpointing)
    {
        var options = fixture.Options("finetune.method=" + method, "finetune.lora.dropout=" + dropout.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "finetune.gradientCheckpointing=" + (checkpointing ? "true" : "false"));
        var loaded = options.LoadBase(fixture.ModelDirectory, Forgetless.Model.Devices.Placement.Cpu);
        using var tuned = options.Apply(loaded.Model, seed: 3);
        tuned.Model.GradientCheckpointing.Should().Be(checkpointing);
        tuned.Model.train();
        var random = new Random(2);
        for (int batchNumber = 0; batchNumber < 2; batchNumber++)
        {
            var rows = Enumerable.Range(0, 3).Select(i =>
            {
                var ids = Enumerable.Range(0, 10 + i).Select(_ => random.Next(0, 28)).ToArray();
                return new PreparedRow(ids, ids.Select(_ => true).ToArray(), ids.Length, "task");
            }).ToList();
            using var scope = NewDisposeScope();
            using var batch = TokenBatch.Of(rows);
            var logits = batch.Logits(tuned.Model);
            TokenLosses.CrossEntropy(logits.narrow(1, 0, batch.Targets.shape[1]), batch.Targets, batch.TargetMask).backward();
        }
        return tuned.Trainable.Where(t => t.parameter.grad is not null)
            .ToDictionary(t => t.name, t => t.parameter.grad!.detach().reshape(-1).data<float>().ToArray());
    }

    public void Dispose() => fixture.Dispose();
}
