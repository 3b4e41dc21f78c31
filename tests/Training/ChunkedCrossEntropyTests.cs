using Forgetless.Model;
using FluentAssertions;
using Forgetless.FineTuning;
using Forgetless.Tests.FineTuning;
using Forgetless.Tests.Peft;
using Forgetless.Training;
using Forgetless.Training.Terms;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Forgetless.Tests.Training;

/// <summary>
/// The task loss by chunks against libtorch's own unfused cross-entropy (logits = h·Wᵀ, log_softmax, gather, autograd):
/// the loss, the reported sum and the gradients of the hidden states and of a trained head agree, with chunks that
/// split the rows unevenly; and a run trained either way ends at the same numbers.
/// </summary>
[Collection(TorchSerial.Name)]
public sealed class ChunkedCrossEntropyTests
{
    [Theory]
    [InlineData(false, 3)]
    [InlineData(true, 3)]
    [InlineData(true, 64)]
    public void Loss_and_gradients_equal_the_unfused_cross_entropy(bool headTrains, long rowsPerChunk)
    {
        using var scope = NewDisposeScope();
        using var g = new Generator(11);
        long n = 37, d = 8, vocab = 50;
        var hidden = randn(new[] { n, d }, generator: g).requires_grad_(true);
        var head = randn(new[] { vocab, d }, generator: g).requires_grad_(headTrains);
        var targets = randint(0, vocab, new[] { n }, generator: g);
        var mask = rand(new[] { n }, generator: g).gt(Scalars.Of(0.3)).to(ScalarType.Float32);
        var weights = mask.mul(rand(new[] { n }, generator: g).add(Scalars.Half, Scalars.One)).div(Scalars.Of(29.0));

        var (loss, maskedSum) = ChunkedCrossEntropy.Of(hidden, head, targets, weights, mask, rowsPerChunk);
        loss.backward();
        var ourHidden = hidden.grad!.clone();
        var ourHead = headTrains ? head.grad!.clone() : null;
        hidden.grad!.zero_();
        if (headTrains) head.grad!.zero_();

        var nll = nn.functional.log_softmax(hidden.matmul(head.t()), -1).gather(1, targets.unsqueeze(1)).squeeze(1).neg();
        var reference = nll.mul(weights).sum();
        reference.backward();

        loss.item<float>().Should().BeApproximately(reference.item<float>(), 1e-5f);
        maskedSum.item<float>().Should().BeApproximately(nll.mul(mask).sum().item<float>(), 1e-4f);
        ourHidden.sub(hidden.grad!).abs().max().item<float>().Should().BeLessThan(1e-6f);
        if (headTrains) ourHead!.sub(head.grad!).abs().max().item<float>().Should().BeLessThan(1e-6f);
    }

    /// <summary>
    /// A 16-bit head beside f32 activations (qlora's embedding on the CPU) is widened a slice at a time: the result is
    /// the unfused loss with the head widened whole, slices splitting the vocabulary unevenly.
    /// </summary>
    [Fact]
    public void A_sixteen_bit_head_is_widened_by_slices_to_the_same_loss_and_gradients()
    {
        using var scope = NewDisposeScope();
        using var g = new Generator(12);
        long n = 21, d = 8, vocab = 50;
        var hidden = randn(new[] { n, d }, generator: g).requires_grad_(true);
        var head = randn(new[] { vocab, d }, generator: g).to(ScalarType.BFloat16);
        var targets = randint(0, vocab, new[] { n }, generator: g);
        var mask = ones(n);
        var weights = mask.div(Scalars.Of(n));

        var (loss, _) = ChunkedCrossEntropy.Of(hidden, head, targets, weights, mask, rowsPerChunk: 4, headSliceRows: 7);
        loss.backward();
        var ours = hidden.grad!.clone();
        hidden.grad!.zero_();
        var wide = head.to(ScalarType.Float32);
        var reference = nn.functional.log_softmax(hidden.matmul(wide.t()), -1).gather(1, targets.unsqueeze(1)).squeeze(1).neg().mul(weights).sum();
        reference.backward();

        loss.item<float>().Should().BeApproximately(reference.item<float>(), 1e-5f);
        ours.sub(hidden.grad!).abs().max().item<float>().Should().BeLessThan(1e-6f);
        var probeNll = ChunkedCrossEntropy.TokenNll(hidden.detach(), head, targets, rowsPerChunk: 5, headSliceRows: 9);
        probeNll.mul(weights).sum().item<float>().Should().BeApproximately(reference.item<float>(), 1e-5f);
    }

    [Theory]
    [InlineData("lora")]
    [InlineData("full")]
    public void Training_with_the_chunked_loss_ends_where_the_unfused_loss_ends(string method)
    {
        using var fixture = new FineTuneFixture();
        var (offLosses, offWeights, offChunked) = Train(fixture, method, "off");
        var (onLosses, onWeights, onChunked) = Train(fixture, method, "on");
        offChunked.Should().BeFalse("with chunkedLoss off the whole logits are made");
        onChunked.Should().BeTrue("with chunkedLoss on the task loss gets the hidden states and no logits exist");
        onLosses.Should().HaveCount(offLosses.Count);
        for (int i = 0; i < offLosses.Count; i++) onLosses[i].Should().BeApproximately(offLosses[i], 1e-4, $"step {i + 1}");
        foreach (var (name, value) in offWeights)
            onWeights[name].Zip(value).Max(p => Math.Abs(p.First - p.Second)).Should().BeLessThan(1e-4f, name);
    }

    [Fact]
    public void The_probes_loss_by_chunks_equals_the_loss_from_whole_logits()
    {
        using var fixture = new FineTuneFixture();
        using var model = Forgetless.Model.ModelFolder.LoadModel(fixture.ModelDirectory);
        var rows = PreparedRows();
        double whole = LossProbe.MeanLoss(model, rows, 4, ChunkedLoss.Off);
        double chunked = LossProbe.MeanLoss(model, rows, 4, ChunkedLoss.On);
        chunked.Should().BeApproximately(whole, 1e-5);
        whole.Should().BeGreaterThan(1.0, "an untrained model over 64 tokens is far from certain");
    }

    private static (List<double> Losses, Dictionary<string, float[]> Weights, bool Chunked) Train(FineTuneFixture fixture, string method, string chunkedLoss)
    {
        var options = fixture.Options("finetune.method=" + method, "finetune.chunkedLoss=" + chunkedLoss);
        var loaded = options.LoadBase(fixture.ModelDirectory, Forgetless.Model.Devices.Placement.Cpu);
        using var tuned = options.Apply(loaded.Model, seed: 5);
        var rows = PreparedRows();
        var probe = new ChunkedPathProbe();
        var losses = new List<double>();
        var training = options.Training with { Steps = 4, WarmupSteps = 0, TokensPerBatch = 64, EvalEvery = 100, CheckpointEvery = 100, LogEvery = 1 };
        var terms = new List<TrainingTerm> { new TaskLoss(), probe };
        var work = Directory.CreateDirectory(Path.Combine(fixture.Root, "work-" + method + "-" + chunkedLoss)).FullName;
        new Trainer(training, tuned, new PreparedBatches(rows, training.TokensPerBatch, seed: 1), new LossProbe(rows.Take(2).ToList(), rows.Take(2).ToList()), terms, NullLogger.Instance)
            .Run(work, CancellationToken.None);
        foreach (var line in File.ReadLines(Path.Combine(work, MetricsLog.FileName)))
            if (System.Text.Json.JsonDocument.Parse(line).RootElement.TryGetProperty("loss", out var loss) && loss.ValueKind == System.Text.Json.JsonValueKind.Number)
                losses.Add(loss.GetDouble());
        var weights = tuned.Trainable.ToDictionary(t => t.name, t => t.parameter.detach().cpu().data<float>().ToArray());
        return (losses, weights, probe.SawChunked);
    }

    private static List<PreparedRow> PreparedRows()
    {
        var random = new Random(9);
        return Enumerable.Range(0, 16).Select(i =>
        {
            int length = 10 + i % 7;
            var ids = Enumerable.Range(0, length).Select(_ => random.Next(0, 28)).ToArray();
            var mask = Enumerable.Range(0, length).Select(t => t >= length / 3).ToArray();
            return new PreparedRow(ids, mask, length, i % 3 == 0 ? "replay" : "task", null);
        }).ToList();
    }
}

/// <summary>A term that adds nothing and records whether the batches it saw came as hidden states without logits.</summary>
internal sealed class ChunkedPathProbe : TrainingTerm
{
    public override string Name => "chunked-path-probe";
    public override bool ReadsLogits => false;
    public bool SawChunked { get; private set; }

    public override TermValue? BatchLoss(TermBatch batch)
    {
        SawChunked = batch.Hidden is not null && batch.OutputWeight is not null && !batch.HasLogits;
        return null;
    }
}
