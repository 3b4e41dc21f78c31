using Forgetless.Model;
using Forgetless.Peft;
using Forgetless.Tests.FineTuning;
using Forgetless.Tests.Packaging;
using Forgetless.Training.Terms;
using static TorchSharp.torch;

namespace Forgetless.Tests.Peft;

/// <summary>O-LoRA: earlier LoRA blocks frozen beside a new one, saved as one LoRA, and the orthogonality term.</summary>
[Collection(TorchSerial.Name)]
public sealed class OLoraTests
{
    [Fact]
    public void The_orthogonality_penalty_and_its_gradient_match_the_formula()
    {
        var linear = nn.Linear(3, 2);
        using var layer = new OLoraLinear(linear, new LoraOptions { R = 1, Alpha = 1 });
        using (no_grad()) layer.lora_A.weight.copy_(tensor(new float[] { 1, 2, 3 }).view(1, 3));
        layer.SetPrevious(tensor(new float[] { 1, 0, 0, 0, 1, 0 }).view(2, 3), zeros(2, 2));
        using var term = new Orthogonality([layer], lambda: 0.5);
        var value = term.StepLoss()!.Value;
        // A_prev·Aᵀ = [1, 2]; λ‖·‖² = 0.5 · 5
        value.Reported.item<float>().Should().BeApproximately(2.5f, 1e-6f);
        value.Loss.backward();
        // 2λ·A·A_prevᵀ·A_prev = [1, 2]·[[1, 0, 0], [0, 1, 0]] = [1, 2, 0]
        TensorAssert.Values(layer.lora_A.weight.grad!).Should().Equal(1f, 2f, 0f);
    }

    [Fact]
    public void Without_earlier_blocks_there_is_no_orthogonality_penalty()
    {
        using var layer = new OLoraLinear(nn.Linear(3, 2), new LoraOptions { R = 1, Alpha = 1 });
        new Orthogonality([layer], 0.5).StepLoss().Should().BeNull();
    }

    [Fact]
    public void Continuing_a_LoRA_adapter_starts_at_its_model_and_the_saved_stack_reloads_as_plain_LoRA()
    {
        using var dir = new TempDirectory();
        string basePath = PackageFixtures.SaveBase(dir.Path, PackageFixtures.Llama());
        var first = PackageFixtures.SaveLora(dir.Path, basePath, PackageFixtures.QV, new LoraOptions { R = 2, Alpha = 4, Seed = 1 });
        using var ids = PackageFixtures.Ids();
        using var earlierModel = ModelFolder.LoadModel(basePath);
        AdapterFolder.Apply(earlierModel, first);
        using var earlier = earlierModel.Forward(ids);

        var options = FineTuneFixtureOptions.Parse("finetune.method=olora", "finetune.lora.r=2", "finetune.lora.alpha=8", "finetune.lora.targetModules=[q_proj,v_proj]");
        using var tuned = options.Apply(ModelFolder.LoadModel(basePath), seed: 5, initAdapter: first);
        tuned.Trainable.Should().OnlyContain(t => t.name.EndsWith("lora_A.weight") || t.name.EndsWith("lora_B.weight"));
        using (var start = tuned.Model.Forward(ids))
            TensorAssert.MaxAbsDiff(start, earlier).Should().BeLessThan(1e-5f, "the new block starts at zero");

        PackageFixtures.Perturb(tuned.Model);
        using var trained = tuned.Model.Forward(ids);
        string folder = Path.Combine(dir.Path, "olora");
        tuned.Method.Save(tuned, folder, "base");
        var config = LoraMethod.Read(AdapterFolder.Describe(folder));
        config.Options.R.Should().Be(4, "two earlier ranks and two new");
        config.Options.Scaling.Should().Be(4.0, "the new block's α/r = 8/2");
        using var reloaded = ModelFolder.LoadModel(basePath);
        AdapterFolder.Apply(reloaded, folder).Should().Be("LORA");
        using var logits = reloaded.Forward(ids);
        TensorAssert.MaxAbsDiff(trained, logits).Should().BeLessThan(1e-5f);
    }

    [Fact]
    public async Task Orthogonality_without_olora_is_a_config_error()
    {
        using var f = new FineTuneFixture();
        var act = async () => await f.RunAsync(overrides: ["finetune.regularizers=[orthogonality]"]);
        await act.Should().ThrowAsync<Forgetless.Configuration.ConfigException>().WithMessage("*method = olora*");
    }
}
