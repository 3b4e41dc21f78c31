using Forgetless.Peft;
using Forgetless.Tests.Peft;
using Forgetless.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Tests.Training;

[Collection(TorchSerial.Name)]
public sealed class AdapterTrainingTests
{
    public enum Method { Lora, Dora, QLora, Bottleneck, FreezeBottom }

    [Theory]
    [InlineData(Method.Lora)]
    [InlineData(Method.Dora)]
    [InlineData(Method.QLora)]
    [InlineData(Method.Bottleneck)]
    [InlineData(Method.FreezeBottom)]
    public void A_few_steps_lower_the_loss_and_leave_frozen_tensors_untouched(Method method)
    {
        using var model = new ToyLm(seed: 2);
        var targets = ModuleTargets.Suffixes("q_proj", "v_proj", "o_proj", "down_proj");
        switch (method)
        {
            case Method.Lora: Lora.Apply(model, targets, new LoraOptions { R = 4, Alpha = 8 }); break;
            case Method.Dora: Lora.Apply(model, targets, new LoraOptions { R = 4, Alpha = 8, UseDora = true }); break;
            case Method.QLora: QLora.Apply(model, targets, new LoraOptions { R = 4, Alpha = 8 }); break;
            case Method.Bottleneck: Bottleneck.Apply(model, ModuleTargets.Suffixes("o_proj", "down_proj"), new BottleneckOptions { BottleneckSize = 4 }); break;
        }
        if (method == Method.FreezeBottom) Freezing.FreezeBottom(model, 1); else Freezing.OnlyAdapters(model);

        var trainable = Freezing.Trainable(model);
        var frozenBefore = ToyLm.Snapshot(model).Where(kv => trainable.All(t => t.name != kv.Key)).ToDictionary();
        frozenBefore.Should().NotBeEmpty();
        var buffersBefore = model.named_buffers().ToDictionary(b => b.name, b => b.buffer.bytes.ToArray());

        using var g = new Generator(6);
        using var data = randint(0, ToyLm.Vocab, new long[] { 4, 7 }, generator: g);
        using var inputs = data.narrow(1, 0, 6);
        using var labels = data.narrow(1, 1, 6);
        using var mask = ones(4, 6);
        using var opt = AdamWOptimizer.ForParameters(trainable, new AdamWOptions { LearningRate = 0.03, WeightDecay = 0 });

        float Loss()
        {
            using var scope = NewDisposeScope();
            return TokenLosses.CrossEntropy(model.forward(inputs), labels, mask).item<float>();
        }
        var before = Loss();
        for (var step = 0; step < 15; step++)
        {
            using var scope = NewDisposeScope();
            var loss = TokenLosses.CrossEntropy(model.forward(inputs), labels, mask);
            opt.ZeroGrad();
            loss.backward();
            opt.Step();
        }
        var after = Loss();
        after.Should().BeLessThan(before * 0.9f, $"{method} should fit a fixed batch (loss {before} → {after})");

        var frozenAfter = ToyLm.Snapshot(model);
        foreach (var (name, values) in frozenBefore) frozenAfter[name].Should().Equal(values, $"'{name}' is frozen");
        foreach (var (name, buffer) in model.named_buffers())
            buffer.bytes.ToArray().Should().Equal(buffersBefore[name], $"buffer '{name}' is frozen");
    }
}
