using FluentAssertions;
using Forgetless.FineTuning;
using Forgetless.Model;
using Forgetless.Model.Devices;
using Forgetless.Model.Inference;
using Forgetless.Model.Tokenizers;
using Forgetless.Peft;
using Forgetless.Tests.FineTuning;
using Forgetless.Training.Terms;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Forgetless.Tests.Devices;

/// <summary>
/// Device placement without a GPU: everything runs on TorchSharp's meta device, where tensors have shapes but no
/// values and an operation that mixes devices throws exactly as it would on CUDA. A training step of every registered
/// method with every registered training term, a scoring batch and generation steps all complete there, so no tensor
/// of these paths is made on the CPU behind the run's back — packed rows (a <see cref="TokenLayout"/>'s block-diagonal mask),
/// continuations sharing a context (scoring's branch layout) and batched greedy generation included. (Values read back
/// from meta are zeros: HostValues.)
/// </summary>
[Collection(Forgetless.Tests.Peft.TorchSerial.Name)]
public sealed class MetaDeviceTests : IDisposable
{
    private readonly FineTuneFixture fixture = new();

    private static readonly Placement Meta = new(META, ScalarType.Float32);

    public static TheoryData<string, string> MethodsAndPrecisions()
    {
        var data = new TheoryData<string, string>();
        foreach (var method in PeftMethods.Names)
            foreach (var precision in new[] { "fp32", "bf16" })
                data.Add(method, precision);
        return data;
    }

    [Fact]
    public void The_meta_device_rejects_an_operation_that_mixes_it_with_the_cpu()
    {
        // What makes the other tests mean something: meta catches a stray CPU tensor like CUDA would.
        using var model = ModelFolder.LoadModel(fixture.ModelDirectory, Meta);
        var act = () => model.Forward(tensor(new long[] { 1, 2, 3 }, [1, 3]));
        act.Should().Throw<Exception>().Which.Message.Should().Contain("device");
    }

    [Theory]
    [MemberData(nameof(MethodsAndPrecisions))]
    public void One_training_step_of_every_method_with_every_term_runs_on_the_meta_device(string method, string precision) =>
        OneStep(method, Meta with { ComputeType = Placement.TypeOf(precision == "bf16" ? Precision.Bf16 : Precision.Fp32) });

    /// <summary>
    /// The meta device checks devices but not types (its matmul accepts bf16 × f32); libtorch's CPU kernels check both,
    /// so a step in half precision on the CPU (slow there, tiny here) proves that frozen weights, activations and f32
    /// trainable tensors meet in the right types everywhere — f16 with its loss scaling.
    /// </summary>
    [Theory]
    [MemberData(nameof(MethodsAndHalfTypes))]
    public void One_training_step_in_half_precision_keeps_types_consistent(string method, string precision) =>
        OneStep(method, new Placement(CPU, Placement.TypeOf(precision == "bf16" ? Precision.Bf16 : Precision.Fp16)));

    public static TheoryData<string, string> MethodsAndHalfTypes()
    {
        var data = new TheoryData<string, string>();
        foreach (var method in PeftMethods.Names)
            foreach (var precision in new[] { "bf16", "fp16" })
                data.Add(method, precision);
        return data;
    }

    /// <summary>
    /// The task loss by chunks (the whole logits never made) takes the hidden states and the output weight: with every
    /// term that does not read the logits (kd does, and would turn the chunks off), on meta in f32 and bf16.
    /// </summary>
    [Theory]
    [MemberData(nameof(MethodsAndPrecisions))]
    public void One_training_step_with_the_chunked_task_loss_runs_on_the_meta_device(string method, string precision) =>
        OneStep(method, Meta with { ComputeType = Placement.TypeOf(precision == "bf16" ? Precision.Bf16 : Precision.Fp32) }, chunkedLoss: true);

    private void OneStep(string method, Placement placement, bool chunkedLoss = false)
    {
        var device = placement.Device.type;
        // Every term that the method can carry (O-LoRA's orthogonality term needs O-LoRA's stacked blocks).
        var termNames = TrainingTerms.All.Where(t => (t.Name != "orthogonality" || method == "olora") && !(chunkedLoss && t.ReadsLogits)).Select(t => t.Name);
        var options = fixture.Options("finetune.method=" + method, "finetune.regularizers=[" + string.Join(",", termNames) + "]",
            "finetune.chunkedLoss=" + (chunkedLoss ? "on" : "off"),
            "finetune.ewc.samples=2", "finetune.ewc.tokensPerRow=2", "finetune.si.pathSteps=1", "finetune.si.pathRows=2", "finetune.freeze.layers=1",
            "finetune.gradientCheckpointing=true");
        var loaded = options.LoadBase(fixture.ModelDirectory, placement);
        using var tuned = options.Apply(loaded.Model, seed: 3, placement: placement);
        // O-LoRA continuing an earlier task: its frozen blocks arrive from the earlier adapter's file on the CPU and must
        // follow the layer to the run's device (they are no registered buffers), and the orthogonality term then applies.
        foreach (var (_, layer) in AdapterLayers.Find(tuned.Model))
            if (layer is OLoraLinear olora)
            {
                using var a = ones(2, olora.lora_A.weight.shape[1]);
                using var b = ones(olora.lora_B.weight.shape[0], 2);
                olora.SetPrevious(a, b);
            }
        AllOn(tuned, device);
        tuned.Trainable.Should().OnlyContain(t => t.parameter.dtype == ScalarType.Float32, "trainable parameters stay f32 beside frozen weights in the compute type");

        var rows = Rows(12);
        var composed = TrainingTerms.Compose(options.Regularizers, term => new TermContext
        {
            Tuned = tuned, Options = options.Plugins[term.Name], BaseModelDirectory = fixture.ModelDirectory,
            ReplayRows = rows.Where(r => r.IsReplay).ToList(), HeldoutRows = rows.Take(2).ToList(),
            CacheDirectory = Path.Combine(fixture.Root, "cache"), Logger = NullLogger.Instance, Placement = placement,
        });
        var probe = new Forgetless.Tests.Training.ChunkedPathProbe();
        var terms = chunkedLoss ? [.. composed, probe] : composed;
        try
        {
            var training = options.Training with { Steps = 1, WarmupSteps = 0, TokensPerBatch = 64, EvalEvery = 1, CheckpointEvery = 100, LossScaling = placement.LossScaling };
            long stepsSeen = 0;
            var trainer = new Trainer(training, tuned, new PreparedBatches(rows, training.TokensPerBatch, seed: 1), new LossProbe(rows.Take(2).ToList(), rows.Take(2).ToList()),
                terms, NullLogger.Instance)
            {
                AfterStep = _ =>
                {
                    stepsSeen++;
                    foreach (var (name, p) in tuned.Trainable)
                    {
                        p.device_type.Should().Be(device, name);
                        if (p.grad is { } g) g.device_type.Should().Be(device, name + ".grad");
                    }
                },
            };
            var result = trainer.Run(Directory.CreateDirectory(Path.Combine(fixture.Root, "work-" + method + placement.ComputeType)).FullName, CancellationToken.None);
            result.Steps.Should().Be(1);
            stepsSeen.Should().Be(1);
            probe.SawChunked.Should().Be(chunkedLoss, "the chunked task loss is taken exactly when asked for");
            AllOn(tuned, device);
            if (device == DeviceType.CPU) double.IsFinite(result.ValidationLossAfter).Should().BeTrue();
        }
        finally
        {
            foreach (var t in terms) t.Dispose();
        }
    }

    [Theory]
    [InlineData("lora")]
    [InlineData("qlora")]
    [InlineData("prefix")]
    public void A_scoring_batch_and_generation_steps_run_on_the_meta_device(string method)
    {
        var options = fixture.Options("finetune.method=" + method);
        var loaded = options.LoadBase(fixture.ModelDirectory, Meta);
        using var tuned = options.Apply(loaded.Model, seed: 3, placement: Meta);
        var tokenizer = TokenizerLoader.Load(fixture.ModelDirectory);
        var model = tuned.Model;
        model.eval();

        var scored = new Scorer(model, tokenizer, batchSize: 2).Score(
        [
            ScoreRequest.ForContinuation("spell cat is", " c a t"),
            ScoreRequest.ForContinuation("spell cat is", " d o g"),
            new ScoreRequest(Text: "the moon over the quiet lake"),
        ]);
        scored.Should().HaveCount(3);
        scored[0].TokenIds.Should().NotBeEmpty();
        scored[1].TokenIds.Should().NotBeEmpty();

        var greedy = new TextGenerator(model, tokenizer).Generate("spell dog is", new GenerationOptions { MaxNewTokens = 2 });
        greedy.TokenIds.Should().HaveCount(2);
        var sampled = new TextGenerator(model, tokenizer).Generate("spell dog is", new GenerationOptions { MaxNewTokens = 2, Temperature = 0.8, TopP = 0.9, Seed = 5 });
        sampled.TokenIds.Should().HaveCount(2);
        // Batched greedy generation: left-padded prompts, a KV cache and a stop table on the device (meta reads zeros, so
        // no row stops early there and every row runs to the limit, past a host read every 8 steps).
        var batched = new TextGenerator(model, tokenizer).GenerateGreedy(
            [tokenizer.Encode("spell dog is"), tokenizer.Encode("spell a cat is")], new GenerationOptions { MaxNewTokens = 9 });
        batched.Should().HaveCount(2);
        AllOn(tuned, DeviceType.META);
    }

    private static void AllOn(TunedModel tuned, DeviceType device)
    {
        var modules = new List<nn.Module> { tuned.Model };
        if (tuned.Model.PrefixKeyValues is nn.Module prefix) modules.Add(prefix);
        foreach (var module in modules)
        {
            module.named_parameters().Where(p => p.parameter.device_type != device).Select(p => p.name)
                .Should().BeEmpty("every parameter lives on the run's device");
            module.named_buffers().Where(b => b.buffer.device_type != device).Select(b => b.name)
                .Should().BeEmpty("every buffer (NF4 codes, constants) lives on the run's device");
        }
    }

    /// <summary>
    /// Rows of the tiny vocabulary, every third one replay, loss on the second half of each; every fourth row packs two
    /// documents (so batches carry a <see cref="TokenLayout"/>, replay rows among them for kd's row selection).
    /// </summary>
    private static List<PreparedRow> Rows(int count)
    {
        var random = new Random(4);
        return Enumerable.Range(0, count).Select(i =>
        {
            int length = 12 + i % 5;
            var ids = Enumerable.Range(0, length).Select(_ => random.Next(0, 28)).ToArray();
            var mask = Enumerable.Range(0, length).Select(t => t >= length / 2).ToArray();
            var segments = i % 4 == 0 ? Enumerable.Range(0, length).Select(t => t < length / 3 ? 1 : 2).ToArray() : null;
            return new PreparedRow(ids, mask, length, i % 3 == 0 ? "replay" : "task", segments);
        }).ToList();
    }

    public void Dispose() => fixture.Dispose();
}
