using Forgetless.Model;
using Forgetless.Peft;
using Forgetless.Tests.Peft;
using Forgetless.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Tests.Training;

[Collection(TorchSerial.Name)]
public sealed class OptimizerTests : IDisposable
{
    private readonly string dir = Path.Combine(Path.GetTempPath(), "forgetless-train-" + Guid.NewGuid().ToString("N"));

    public OptimizerTests() => Directory.CreateDirectory(dir);

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void One_AdamW_step_matches_the_hand_computed_update()
    {
        using var p = new Parameter(tensor(new[] { 1f, 1f }));
        using var b = new Parameter(tensor(new[] { 1f }));
        using var opt = AdamWOptimizer.ForParameters([("w.weight", p), ("w.bias", b)], new AdamWOptions { LearningRate = 0.1, WeightDecay = 0.1 });
        opt.Groups.Single(g => g.Name == "no_decay").Parameters.Select(x => x.name).Should().Equal("w.weight", "w.bias");
        opt.Groups.Single(g => g.Name == "decay").Parameters.Should().BeEmpty(); // both are 1-D here
        using var q = new Parameter(tensor(new[] { 1f, 1f }).reshape(1, 2));
        using var opt2 = AdamWOptimizer.ForParameters([("m.weight", q)], new AdamWOptions { LearningRate = 0.1, WeightDecay = 0.1 });
        using (var loss = q.sum().mul(Scalars.Half)) loss.backward(); // g = 0.5
        opt2.Step();
        // p = 1·(1 − 0.01) = 0.99; m = 0.05, v = 0.00025; m̂ = 0.5, v̂ = 0.25 → p −= 0.1·0.5/(0.5 + 1e-8)
        TensorAssert.Values(q).Should().AllSatisfy(v => v.Should().BeApproximately(0.89f, 1e-6f));

        // Step 2, g = 2: decay 0.89·0.99 = 0.8811; m = 0.9·0.05 + 0.1·2 = 0.245, v = 0.999·0.00025 + 0.001·4 = 0.00424975;
        // bias corrections for t = 2: m̂ = 0.245/(1 − 0.9²) = 1.2894737, v̂ = 0.00424975/(1 − 0.999²) = 2.1259380;
        // p = 0.8811 − 0.1·1.2894737/(√2.1259380 + 1e-8) = 0.7926624 (PyTorch's AdamW gives 0.79266238).
        using (var loss = q.sum().mul(Scalars.Two)) { q.grad!.zero_(); loss.backward(); }
        opt2.Step();
        double m2 = 0.9 * 0.05 + 0.1 * 2, v2 = 0.999 * 0.00025 + 0.001 * 4;
        double expected2 = 0.89 * 0.99 - 0.1 * (m2 / (1 - 0.81)) / (Math.Sqrt(v2 / (1 - 0.999 * 0.999)) + 1e-8);
        expected2.Should().BeApproximately(0.7926624, 1e-7);
        TensorAssert.Values(q).Should().AllSatisfy(v => v.Should().BeApproximately((float)expected2, 1e-6f));

        // Step 3 at half the rate (lrFactor 0.5), g = −1: the factor scales both the decay and the update.
        using (var loss = q.sum().mul(Scalars.MinusOne)) { q.grad!.zero_(); loss.backward(); }
        opt2.Step(lrFactor: 0.5);
        double m3 = 0.9 * m2 - 0.1, v3 = 0.999 * v2 + 0.001;
        double expected3 = expected2 * (1 - 0.05 * 0.1) - 0.05 * (m3 / (1 - 0.729)) / (Math.Sqrt(v3 / (1 - Math.Pow(0.999, 3))) + 1e-8);
        TensorAssert.Values(q).Should().AllSatisfy(v => v.Should().BeApproximately((float)expected3, 1e-6f));
    }

    [Fact]
    public void Schedule_warms_up_linearly_then_decays_by_cosine_to_the_floor()
    {
        var s = new WarmupCosineSchedule(WarmupSteps: 10, TotalSteps: 110, MinRatio: 0.1);
        s.Factor(0).Should().Be(0);
        s.Factor(5).Should().Be(0.5);
        s.Factor(10).Should().Be(1.0);
        s.Factor(60).Should().BeApproximately(0.55, 1e-12);
        s.Factor(35).Should().BeApproximately(0.1 + 0.9 * 0.5 * (1 + Math.Cos(Math.PI / 4)), 1e-12);
        s.Factor(110).Should().BeApproximately(0.1, 1e-12);
        s.Factor(500).Should().BeApproximately(0.1, 1e-12);
        new WarmupCosineSchedule(0, 100).Factor(0).Should().Be(1.0);
    }

    [Fact]
    public void Clipping_scales_to_the_global_norm_and_non_finite_gradients_are_named()
    {
        using var a = new Parameter(tensor(new[] { 1f }));
        using var b = new Parameter(tensor(new[] { 1f }));
        using (var loss = a.sum().mul(Scalars.Of(3)).add(b.sum().mul(Scalars.Of(4)), Scalars.One)) loss.backward();
        Gradients.ClipGlobalNorm([a, b], 1.0).Should().BeApproximately(5.0, 1e-6);
        a.grad!.item<float>().Should().BeApproximately(0.6f, 1e-5f);
        b.grad!.item<float>().Should().BeApproximately(0.8f, 1e-5f);
        Gradients.ClipGlobalNorm([a, b], 10.0).Should().BeApproximately(1.0, 1e-5);
        a.grad!.item<float>().Should().BeApproximately(0.6f, 1e-5f);
        Gradients.NonFinite([("a", a), ("b", b)]).Should().BeEmpty();
        b.grad!.fill_(Scalars.Of(double.NaN));
        Gradients.NonFinite([("a", a), ("b", b)]).Should().Equal("b");
        double.IsFinite(Gradients.ClipGlobalNorm([a, b], 1.0)).Should().BeFalse();
    }

    private sealed class Run : IDisposable
    {
        public required ToyLm Model;
        public required AdamWOptimizer Optimizer;
        public required SeededSampler Sampler;
        public required IReadOnlyList<(string name, Parameter parameter)> Trainable;
        public void Dispose() { Optimizer.Dispose(); Model.Dispose(); }
    }

    private static Run Start(ToyLm baseModel)
    {
        var model = ToyCopy.Twin(baseModel);
        Lora.Apply(model, ModuleTargets.Suffixes("q_proj", "v_proj", "down_proj"), new LoraOptions { R = 2, Alpha = 4, Dropout = 0.2, UseDora = true, Seed = 1 });
        Freezing.OnlyAdapters(model);
        model.train();
        var trainable = Freezing.Trainable(model);
        return new Run
        {
            Model = model,
            Trainable = trainable,
            Optimizer = AdamWOptimizer.ForParameters(trainable, new AdamWOptions { LearningRate = 0.05 }),
            Sampler = new SeededSampler(5, seed: 3),
        };
    }

    private static void Train(Run run, Tensor data, long fromStep, long toStep)
    {
        var schedule = new WarmupCosineSchedule(2, 6, 0.1);
        for (var step = fromStep; step < toStep; step++)
        {
            using var scope = NewDisposeScope();
            var idx = tensor(run.Sampler.NextBatch(2).Select(i => (long)i).ToArray());
            var batch = data.index_select(0, idx);
            var logits = run.Model.forward(batch.narrow(1, 0, 5));
            var loss = TokenLosses.CrossEntropy(logits, batch.narrow(1, 1, 5), ones(2, 5));
            run.Optimizer.ZeroGrad();
            loss.backward();
            Gradients.ClipGlobalNorm(run.Trainable.Select(t => t.parameter), 1.0);
            run.Optimizer.Step(schedule.Factor(step));
        }
    }

    [Fact]
    public void Resuming_from_a_checkpoint_continues_bit_identically()
    {
        using var baseModel = new ToyLm(seed: 8);
        using var data = randint(0, ToyLm.Vocab, new long[] { 5, 6 }, generator: new Generator(4));

        TorchRng.Seed(123);
        using var straight = Start(baseModel);
        Train(straight, data, 0, 6);
        var expected = ToyLm.Snapshot(straight.Model);

        TorchRng.Seed(123);
        var path = Path.Combine(dir, "ckpt.safetensors");
        using (var first = Start(baseModel))
        {
            Train(first, data, 0, 3);
            TrainingCheckpoint.Save(path, 3, first.Trainable, first.Optimizer, first.Sampler.State, first.Model);
        }
        TorchRng.Seed(999); // anything drawn in between must not matter
        using var _ = rand(10);
        using var resumed = Start(baseModel);
        var restored = TrainingCheckpoint.Load(path, resumed.Trainable, resumed.Optimizer, resumed.Model);
        restored.Step.Should().Be(3);
        resumed.Sampler = SeededSampler.Restore(restored.Sampler!);
        Train(resumed, data, restored.Step, 6);

        var actual = ToyLm.Snapshot(resumed.Model);
        actual.Keys.Should().BeEquivalentTo(expected.Keys);
        foreach (var (name, values) in expected)
            actual[name].Should().Equal(values, $"'{name}' must be bit-identical after resume");
        expected["model.layers.0.self_attn.q_proj.lora_B.weight"].Should().Contain(v => v != 0f, "training moved the adapter");
    }

    [Fact]
    public void Rng_capture_and_restore_replays_the_same_draws()
    {
        // A private generator: torch's global one may be drawn from by tests running in parallel.
        using var g = new Generator(17);
        var state = TorchRng.Capture(g);
        using var a = rand(new long[] { 5 }, generator: g);
        TorchRng.Restore(g, state);
        using var b = rand(new long[] { 5 }, generator: g);
        TensorAssert.Values(a).Should().Equal(TensorAssert.Values(b));
        TorchRng.Capture().Should().NotBeEmpty();
    }

    [Fact]
    public void Sampler_is_a_seeded_permutation_per_epoch_and_resumes_mid_epoch()
    {
        var s = new SeededSampler(7, seed: 42);
        var first = s.NextBatch(7);
        first.Order().Should().Equal(Enumerable.Range(0, 7));
        var second = s.NextBatch(7);
        second.Order().Should().Equal(Enumerable.Range(0, 7));
        second.Should().NotEqual(first);
        new SeededSampler(7, 42).NextBatch(14).Should().Equal(first.Concat(second));

        var a = new SeededSampler(7, 42);
        a.NextBatch(10);
        var saved = SamplerState.FromJson(a.State.ToJson());
        saved.Should().Be(new SamplerState(7, 42, 1, 3));
        var b = SeededSampler.Restore(saved);
        b.NextBatch(9).Should().Equal(a.NextBatch(9));
    }
    [Fact]
    public void The_global_norm_is_linalg_vector_norm_bit_for_bit()
    {
        // Gradients.GlobalNorm uses Tensor.norm(2), which takes its order as a number, instead of linalg.vector_norm,
        // which makes a temporary Scalar of it (FL0001): the two must be the same kernel.
        using var g = new Generator(11);
        var grads = new[] { randn(new long[] { 257, 33 }, generator: g), randn(new long[] { 4097 }, generator: g).mul(Scalars.Of(1e-3)), randn(new long[] { 3, 5, 7 }, generator: g) };
        var parameters = grads.Select(t => new TorchSharp.Modules.Parameter(zeros_like(t))).ToList();
        for (int i = 0; i < grads.Length; i++) parameters[i].grad = grads[i];
#pragma warning disable FL0001 // the reference: linalg.vector_norm as torch.nn.utils.clip_grad_norm_ computes the norm
        using var expected = linalg.vector_norm(stack(grads.Select(t => linalg.vector_norm(t, 2)).ToArray()), 2);
        foreach (var t in grads) t.norm(2f).item<float>().Should().Be(linalg.vector_norm(t, 2).item<float>());
#pragma warning restore FL0001
        using var norm = Gradients.GlobalNorm(parameters)!;
        norm.item<float>().Should().Be(expected.item<float>());
    }
}
