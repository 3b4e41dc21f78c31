using FluentAssertions;
using Forgetless.FineTuning;
using Forgetless.Model;
using Forgetless.Model.Devices;
using Forgetless.Peft;
using Forgetless.Tests.FineTuning;
using Forgetless.Training;
using Forgetless.Training.Terms;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Forgetless.Tests.Peft;

/// <summary>
/// qlora keeps what bitsandbytes leaves unquantized — the embedding table and the output head — in the checkpoint's
/// 16-bit type on an f32 run, as transformers loads such a model with torch_dtype = bfloat16: half their memory. A
/// checkpoint stored in f32 loads as before, and every other method upcasts as before.
/// </summary>
[Collection(TorchSerial.Name)]
public sealed class QloraSixteenBitTests : IDisposable
{
    private static readonly ModelConfig Tiny = FineTuneFixture.TinyConfig; // vocabulary 64, hidden 32, untied head

    private readonly Model.Fixtures.TempDir dir = new();
    private string Bf16 => Path.Combine(dir.Path, "bf16");
    private string F32 => Path.Combine(dir.Path, "f32");

    public QloraSixteenBitTests()
    {
        using var model = ModelFactory.Create(Tiny, seed: 3);
        ModelFolder.Save(model, Bf16, new ModelSaveOptions { DType = Forgetless.Model.Safetensors.SafetensorsDType.BF16 });
        ModelFolder.Save(model, F32);
    }

    [Fact]
    public void Qlora_loads_a_bf16_checkpoints_embedding_and_head_in_bf16_and_the_rest_as_before()
    {
        var qlora = FineTuneFixtureOptions.Parse("finetune.method=qlora");
        using var model = qlora.LoadBase(Bf16, Placement.Cpu).Model;
        var types = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.dtype);
        types["model.embed_tokens.weight"].Should().Be(ScalarType.BFloat16);
        types["lm_head.weight"].Should().Be(ScalarType.BFloat16);
        types["model.norm.weight"].Should().Be(ScalarType.Float32, "norms compute in f32 and are tiny");
        model.named_modules().Count(m => m.module is Nf4Linear).Should().Be(2 * 7);

        using var fromF32 = qlora.LoadBase(F32, Placement.Cpu).Model;
        fromF32.named_parameters().First(p => p.name == "model.embed_tokens.weight").parameter.dtype.Should().Be(ScalarType.Float32);
        using var lora = FineTuneFixtureOptions.Parse("finetune.method=lora").LoadBase(Bf16, Placement.Cpu).Model;
        lora.parameters().Should().OnlyContain(p => p.dtype == ScalarType.Float32, "lora trains on an f32 copy of the base");
    }

    [Fact]
    public void The_estimate_counts_the_tables_qlora_keeps_in_16_bits()
    {
        var qlora = FineTuneFixtureOptions.Parse("finetune.method=qlora");
        long f32 = Part(MemoryCheck.Estimate(qlora, F32, Placement.Cpu, 32), "weights");
        long bf16 = Part(MemoryCheck.Estimate(qlora, Bf16, Placement.Cpu, 32), "weights");
        // The embedding (64 × 32) and the untied head (64 × 32) at 2 bytes instead of 4.
        (f32 - bf16).Should().Be(2 * 64 * 32 * 2);
    }

    [Fact]
    public void Training_on_the_16_bit_head_by_chunks_equals_training_with_it_widened_whole()
    {
        var (chunked, chunkedWeights) = Train("on");
        var (whole, wholeWeights) = Train("off");
        chunked.Should().BeApproximately(whole, 1e-5);
        foreach (var (name, value) in wholeWeights)
            chunkedWeights[name].Zip(value).Max(p => Math.Abs(p.First - p.Second)).Should().BeLessThan(1e-5f, name);
    }

    [Fact]
    public void Under_auto_a_16_bit_head_goes_by_chunks_whatever_the_batch()
    {
        // 48 tokens over 64 entries is far below auto's 128 MB; widening the head whole under autograd would keep a copy.
        var probe = new Forgetless.Tests.Training.ChunkedPathProbe();
        Train("auto", probe);
        probe.SawChunked.Should().BeTrue();
    }

    private (double Loss, Dictionary<string, float[]> Weights) Train(string chunkedLoss, TrainingTerm? extra = null)
    {
        var options = FineTuneFixtureOptions.Parse("finetune.method=qlora", "finetune.chunkedLoss=" + chunkedLoss);
        var loaded = options.LoadBase(Bf16, Placement.Cpu);
        using var tuned = options.Apply(loaded.Model, seed: 5);
        var random = new Random(2);
        var rows = Enumerable.Range(0, 6).Select(_ =>
        {
            var ids = Enumerable.Range(0, 12).Select(_ => random.Next(0, 64)).ToArray();
            return new PreparedRow(ids, ids.Select(_ => true).ToArray(), 12, "task");
        }).ToList();
        var training = options.Training with { Steps = 2, WarmupSteps = 0, TokensPerBatch = 48, EvalEvery = 100, CheckpointEvery = 100 };
        var work = Directory.CreateDirectory(Path.Combine(dir.Path, "work-" + chunkedLoss)).FullName;
        var result = new Trainer(training, tuned, new PreparedBatches(rows, training.TokensPerBatch, seed: 1), new LossProbe(rows.Take(2).ToList(), []) { ChunkedLoss = options.ChunkedLoss },
            extra is null ? [new TaskLoss()] : [new TaskLoss(), extra], NullLogger.Instance).Run(work, CancellationToken.None);
        return (result.ValidationLossAfter, tuned.Trainable.ToDictionary(t => t.name, t => t.parameter.detach().data<float>().ToArray()));
    }

    private static long Part(MemoryEstimate e, string name) => e.Parts.Single(p => p.Part == name).Bytes;

    public void Dispose() => dir.Dispose();
}
